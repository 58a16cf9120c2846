"""Users (admin only): create, disable or enable, change role, reset the password.

A new or reset password is generated and shown once. Disabling an account or resetting its password
changes its token nonce, which ends its web sessions and API tokens at once. Granting the manager role
(a new manager, a promotion, a manager's password reset) only asks: another manager confirms it on
``/grants`` (models/grants.py), and the admin never sees a manager's password.
"""

import secrets

from flask import abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext, ngettext

from models import User, audit, db
from models.accounts import new_user_problems
from models.agencies import Agency
from models.grants import GrantRefused, pending_grant_of, request_grant, unusable_password
from models.vocab import ROLES
from server.web import bp
from server.web.paging import paginate
from server.web.rendering import parse_uuid, render, role_name
from server.web.session import login_required
from sync.devices import device_counts, disable_user


def new_password() -> str:
    return secrets.token_urlsafe(12)


def users_page(status=200, **extra):
    stmt = db.select(User).order_by(User.active.desc(), User.username)
    role = request.args.get("role")
    if role in ROLES:
        stmt = stmt.where(User.role == role)
    page = paginate(stmt, "web.users", scalars=True)
    agencies = db.session.execute(db.select(Agency.id, Agency.name).order_by(Agency.name)).all()
    return render("users.html", status, title=gettext("Users"), page=page, devices=device_counts(u.id for u in page.items),
                  roles=ROLES, role=role if role in ROLES else None,
                  agency_choices=[(str(a_id), name) for a_id, name in agencies], **extra)


@bp.get("/users")
@login_required("admin")
def users():
    return users_page()


@bp.post("/users")
@login_required("admin")
def user_create():
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    display_name = request.form.get("display_name", "").strip() or None
    email = request.form.get("email", "").strip() or None
    errors = new_user_problems(username, role, display_name, email)
    if errors:
        return users_page(422, errors=errors, form=request.form)
    user = User(username=username, role=role, display_name=display_name, email=email)
    if role == "manager":
        # Disabled, with a password nobody knows, until another manager confirms (models/grants.py).
        user.active = False
        user.set_password(unusable_password(), temporary=True)
        db.session.add(user)
        db.session.flush()
        audit("user.create", actor=g.user, target=username, role=role, via="web", pending=True)
        request_grant(user, "create", by=g.user, via="web")
        db.session.commit()
        flash(grant_pending(username), "info")
        return redirect(url_for("web.users"))
    password = new_password()
    user.set_password(password, temporary=True)
    db.session.add(user)
    db.session.flush()
    audit("user.create", actor=g.user, target=username, role=role, via="web")
    db.session.commit()
    return users_page(201, shown_password=password, shown_for=username, reason="created")


def grant_pending(username: str) -> str:
    return gettext("A manager must confirm this for %(username)s on the Manager grants page; the password then "
                   "goes to %(username)s by e-mail, or to the confirming manager, never to you.", username=username)


def _ask_for_grant(user: User, kind: str):
    try:
        request_grant(user, kind, by=g.user, via="web")
    except GrantRefused as refused:
        flash(refused.message, "error")
        return redirect(url_for("web.users"))
    db.session.commit()
    flash(grant_pending(user.username), "info")
    return redirect(url_for("web.users"))


def _target(user_id) -> User:
    user = db.session.get(User, parse_uuid(user_id))
    if user is None:
        abort(404)
    return user


# Actions that cannot be undone by a second click: a page says what they do and asks first.
CONFIRM = ("disable", "password")


def confirm_page(user: User, action: str):
    devices = device_counts([user.id]).get(user.id, {}).get("active", 0)
    return render("user_confirm.html", title=gettext("Please confirm"), target=user, action=action,
                  active_devices=devices)


@bp.post("/users/<user_id>/<action>")
@login_required("admin")
def user_action(user_id, action):
    user = _target(user_id)
    if user.id == g.user.id and action in ("disable", "role"):
        flash(gettext("You cannot disable yourself or change your own role; ask another administrator."), "error")
        return redirect(url_for("web.users"))
    if action in CONFIRM and request.form.get("confirmed") != "yes" and not (
            action == "password" and user.role == "manager"):  # that only asks another manager

        return confirm_page(user, action)
    if action == "disable":
        wiped = disable_user(user, by=g.user, via="web")
        message = (ngettext("%(username)s is disabled and signed out everywhere; %(num)d device revoked and told "
                            "to wipe its data at its next contact.",
                            "%(username)s is disabled and signed out everywhere; %(num)d devices revoked and told "
                            "to wipe their data at their next contact.", len(wiped), username=user.username)
                   if wiped else gettext("%(username)s is disabled and signed out everywhere.", username=user.username))
    elif action == "enable":
        if pending_grant_of(user) is not None and pending_grant_of(user).kind == "create":
            flash(gettext("%(username)s is a new manager account waiting for a manager's confirmation.",
                          username=user.username), "error")
            return redirect(url_for("web.users"))
        user.active = True
        audit("user.enable", actor=g.user, target=user.username, via="web")
        message = gettext("%(username)s may sign in again (their revoked devices stay revoked: enrol anew).",
                          username=user.username)
    elif action == "role":
        role = request.form.get("role")
        if role not in ROLES:
            flash(gettext("Choose one of the roles in the list."), "error")
            return redirect(url_for("web.users"))
        if role == "manager" and user.role != "manager":
            return _ask_for_grant(user, "role")
        old, user.role = user.role, role
        user.end_sessions()  # a new role takes effect at the next sign-in
        audit("user.role", actor=g.user, target=user.username, old=old, new=role, via="web")
        message = gettext("%(username)s is now %(role)s.", username=user.username, role=role_name(role))
    elif action == "password":
        if user.role == "manager":
            return _ask_for_grant(user, "password")
        password = new_password()
        user.set_password(password, temporary=True)
        audit("user.password_reset", actor=g.user, target=user.username, via="web")
        db.session.commit()
        if user.id == g.user.id:
            session["nonce"] = user.token_nonce  # keep this session; every other one ends
        return users_page(200, shown_password=password, shown_for=user.username, reason="reset")
    else:
        abort(404)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("web.users"))
