"""Web sign-in state: who is signed in, idle expiry, and the CSRF token every form carries.

The Flask session cookie (signed, HttpOnly, SameSite=Lax, Secure over HTTPS: see ``config.py``)
holds the user id, the user's ``token_nonce`` at sign-in, the time of sign-in and of the last request.
Changing the nonce (signing out, password reset, disabling the account) therefore ends every web
session as it ends every API token. A session also ends when idle too long, and in any case after
``WEB_SESSION_MAX_HOURS``, so a copied cookie kept alive by use does not live for ever.
"""

import hmac
import secrets
import time
import uuid
from functools import wraps

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext

from models import User, db

CSRF_FIELD = "csrf_token"
# All a user whose password someone else chose may do until they choose their own.
TEMPORARY_PASSWORD_ENDPOINTS = ("web.account", "web.account_language", "web.logout")


def register(app) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD


def csrf_token() -> str:
    """The token of this session, created on first use; rendered into every form."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a POST whose form token does not match the session's (400)."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf", "")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description=gettext("The form was stale or did not come from this site. Go back, reload "
                                       "the page and try again."))


def sign_in(user: User) -> None:
    session.clear()
    session.permanent = False
    session["uid"] = str(user.id)
    session["nonce"] = user.token_nonce
    session["started"] = session["seen"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def current_user() -> User | None:
    """The signed-in user, or None when nobody is, the session is idle too long, or it was revoked."""
    if "user" in g:
        return g.user
    g.user = None
    uid = session.get("uid")
    if not uid:
        return None
    now = int(time.time())
    idle = current_app.config["WEB_SESSION_IDLE_MINUTES"] * 60
    longest = current_app.config["WEB_SESSION_MAX_HOURS"] * 3600
    if now - int(session.get("seen", 0)) > idle or now - int(session.get("started", 0)) > longest:
        sign_out()
        g.session_expired = True
        return None
    try:
        user = db.session.get(User, uuid.UUID(uid))
    except ValueError:
        user = None
    if user is None or not user.active or user.token_nonce != session.get("nonce"):
        sign_out()
        g.session_expired = True
        return None
    session["seen"] = now
    g.user = user
    return user


def login_required(*roles: str):
    """Require a signed-in user (redirect to the sign-in page otherwise) with one of ``roles`` (403).

    Every POST through this decorator must carry the session's CSRF token.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                if g.get("session_expired"):
                    flash(gettext("Your session expired. Sign in again."), "info")
                wanted = request.full_path if request.method == "GET" else None
                return redirect(url_for("web.login", next=wanted.rstrip("?") if wanted else None))
            if request.method == "POST":
                check_csrf()
            if user.password_temporary and request.endpoint not in TEMPORARY_PASSWORD_ENDPOINTS:
                flash(gettext("Your password was handed to you: choose your own to go on."), "info")
                return redirect(url_for("web.account"))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate
