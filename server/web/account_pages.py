"""Sign in, sign out, and your own account (change your password)."""

import re
from urllib.parse import urlparse

from flask import flash, g, redirect, request, url_for
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l

from models import audit, db, utcnow
from models.accounts import LoginRefused, authenticate
from models.passwords import password_problems
from server.i18n import available_languages, language_choices
from server.web import bp
from server.web.known_client import known_client_id, remember_known_client
from server.web.rendering import render
from server.web.session import check_csrf, current_user, login_required, sign_in, sign_out


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an absolute URL an attacker could put in a link."""
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


# models.accounts' refusals (English, for the API too), as the sign-in page says them.
REFUSALS = {"Wrong username or password.": _l("Wrong username or password."),
            "This account is disabled. Ask your administrator.": _l("This account is disabled. Ask your administrator.")}
WAIT = re.compile(r"Too many attempts\. Wait (\d+) seconds and try again\.")


def refusal_words(refused: LoginRefused) -> str:
    message = str(refused)
    if wait := WAIT.fullmatch(message):
        return gettext("Too many attempts. Wait %(seconds)s seconds and try again.", seconds=wait.group(1))
    return str(REFUSALS.get(message, message))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = _safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(next_url or url_for("web.dashboard"))
        return render("login.html", next=next_url, username="")
    check_csrf()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        user = authenticate(username, password, utcnow(), address=request.remote_addr,
                            known_client=known_client_id(username))
    except LoginRefused as refused:
        audit("login.failed", target=username[:80], via="web", ip=request.remote_addr)
        db.session.commit()  # keep the throttle counters
        return render("login.html", 401, error=refusal_words(refused), next=next_url, username=username)
    audit("login", actor=user, via="web", ip=request.remote_addr)
    db.session.commit()
    sign_in(user)
    g.user = user
    return remember_known_client(redirect(next_url or url_for("web.dashboard")), user.username)


@bp.post("/logout")
@login_required()
def logout():
    # A copy of the cookie taken before signing out must not work after it: the session cookie is
    # signed but kept by the browser, so only a new nonce ends it (and the user's other sessions).
    g.user.end_sessions()
    audit("logout", actor=g.user, via="web", ip=request.remote_addr)
    db.session.commit()
    sign_out()
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("web.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required()
def account():
    if request.method == "GET":
        return _account_page(200, {})
    errors = {}
    current, new, again = (request.form.get(k, "") for k in ("current", "new", "again"))
    if not g.user.check_password(current):
        errors["current"] = [gettext("This is not your current password.")]
    if problems := password_problems(new, g.user.username):
        errors["new"] = problems
    elif new != again:
        errors["again"] = [gettext("The two new passwords differ.")]
    elif new == current:
        errors["new"] = [gettext("Choose a password other than the current one.")]
    if errors:
        return _account_page(422, errors)
    g.user.set_password(new)  # a new nonce: every other session and API token of this user ends
    audit("user.password_change", actor=g.user, target=g.user.username, via="web", ip=request.remote_addr)
    db.session.commit()
    sign_in(g.user)  # this session goes on with the new nonce
    flash(gettext("Your password is changed. Other sessions and devices' API tokens of yours are signed "
                  "out."), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/language")
@login_required()
def account_language():
    check_csrf()
    code = request.form.get("language", "")
    if code not in available_languages():
        return _account_page(422, {"language": [gettext("Choose one of the languages in the list.")]})
    g.user.language = code
    db.session.commit()
    with force_locale(code):  # the message in the language just chosen, not the one of this request
        flash(gettext("The web is now shown in this language."), "success")
    return redirect(url_for("web.account"))


def _account_page(status, errors):
    return render("account.html", status, title=gettext("Your account"), errors=errors,
                  languages=language_choices())
