"""``/grants`` (managers): confirm or refuse the manager grants an admin asked for (models/grants.py).

On confirmation the new temporary password goes to the user by e-mail when SMTP is set up and the
account has an address; otherwise (or when the mail fails) it is shown once to the confirming manager,
to hand over in person. It is never shown to the admin who asked.
"""

import secrets
import uuid
from dataclasses import dataclass

from flask import abort, current_app, flash, g, redirect, url_for
from flask_babel import gettext

from models import db
from models.grants import GrantRefused, ManagerGrant, confirm_grant, pending_grants, refuse_grant
from server.i18n import in_language
from server.notify.channels import SendFailed, send_email
from server.web import bp
from server.web.rendering import GRANT_WORDS, parse_uuid, render
from server.web.session import login_required


@dataclass(frozen=True)
class PasswordMail:
    """Shaped like a digest for ``send_email``, so the one SMTP path (and its TLS) serves both."""

    email: str
    username: str
    password: str
    sign_in: str
    digest_id: str
    language: str | None = None  # the recipient's (User.language)

    @property
    def subject(self) -> str:
        with in_language(self.language):
            return gettext("Homecoming: your manager account")

    def text(self) -> str:
        with in_language(self.language):
            return gettext(
                "A manager confirmed the manager role for %(username)s.\n\nYour one-time password: %(password)s"
                "\n\nSign in at %(sign_in)s and choose your own password at once; this one works only for that. "
                "If you did not expect this message, tell your manager.",
                username=self.username, password=self.password, sign_in=self.sign_in)


def grants_page(status=200, **extra):
    return render("grants.html", status, title=gettext("Manager grants"), grants=pending_grants(), **extra)


@bp.get("/grants")
@login_required("manager")
def grants():
    return grants_page()


def _deliver(user, password: str) -> bool:
    """E-mail the password to the user when possible; False when the confirming manager must hand it over."""
    config = current_app.config
    if not (config.get("SMTP_HOST") and user.email):
        return False
    mail = PasswordMail(user.email, user.username, password, config.get("BASE_URL", "") + url_for("web.login"),
                        str(uuid.uuid4()), user.language)
    try:
        send_email(mail, config)
    except SendFailed:
        return False
    return True


@bp.post("/grants/<grant_id>/<decision>")
@login_required("manager")
def grant_decide(grant_id, decision):
    grant = db.session.get(ManagerGrant, parse_uuid(grant_id))
    if grant is None or decision not in ("confirm", "refuse"):
        abort(404)
    try:
        if decision == "refuse":
            refuse_grant(grant, by=g.user, via="web")
            db.session.commit()
            flash(gettext("Refused: %(what)s for %(username)s.", what=GRANT_WORDS[grant.kind],
                          username=grant.user.username), "success")
            return redirect(url_for("web.grants"))
        password = secrets.token_urlsafe(12)
        user = confirm_grant(grant, by=g.user, new_password=password, via="web")
    except GrantRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for("web.grants"))
    db.session.commit()
    if _deliver(user, password):
        flash(gettext("%(username)s is a manager; the one-time password went to %(email)s.",
                      username=user.username, email=user.email), "success")
        return redirect(url_for("web.grants"))
    return grants_page(200, shown_password=password, shown_for=user.username)
