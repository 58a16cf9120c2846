"""A new OpenRosa device (ODK Collect, KoboCollect): pick the caseworker, then scan one QR code
(server/openrosa/collect_settings.py), shown in this one response."""

from flask import g, request
from flask_babel import gettext
from markupsafe import Markup

from models import db
from models.errors import Problem
from server.openrosa.collect_settings import collect_settings, odk_server_url, settings_qr
from server.openrosa.credentials import enroll_odk_device
from server.web import bp
from server.web.device_pages import active_caseworker, caseworkers
from server.web.forms import errors_of
from server.web.rendering import render
from server.web.session import login_required


def settings_svg(payload: str) -> Markup:
    svg = settings_qr(payload).svg_inline(scale=4, title=gettext("ODK Collect settings"))
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code with the ODK Collect settings" ', 1))


def page(status=200, **extra):
    return render("odk_device.html", status, title=gettext("New ODK Collect device"), caseworkers=caseworkers(), **extra)


@bp.get("/devices/odk/new")
@login_required("manager")  # like any device: its caseload file holds names (DESIGN §7)
def odk_device_new():
    return page()


@bp.post("/devices/odk")
@login_required("manager")
def odk_device_enrol():
    username = request.form.get("caseworker", "")
    caseworker = active_caseworker(username)
    if caseworker is None:
        return page(422, errors={"caseworker": [gettext("Choose an active caseworker.")]}, form=request.form)
    try:
        device, login, password = enroll_odk_device(caseworker, request.form.get("label", ""), by=g.user)
    except Problem as exc:
        db.session.rollback()
        errors = {"caseworker" if k == "user" else k: v for k, v in errors_of(exc).items()}
        return page(422, errors=errors, form=request.form)
    db.session.commit()
    # Rendered, not redirected: the password is in this one response only.
    return page(201, enrolled=device, enrolled_for=caseworker.username, login=login, password=password,
                server_url=odk_server_url(), qr=settings_svg(collect_settings(login, password)))
