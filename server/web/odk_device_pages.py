"""A new OpenRosa device (ODK Collect, KoboCollect): pick the caseworker, then scan one QR code
(server/openrosa/collect_settings.py), shown once, on the page the enrolment redirects to."""

from flask import abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext
from markupsafe import Markup

from models import Device, db
from models.errors import Problem
from server.openrosa.collect_settings import collect_settings, odk_server_url, settings_qr
from server.openrosa.credentials import enroll_odk_device
from server.web import bp
from server.web.device_pages import active_caseworker, caseworkers
from server.web.forms import errors_of
from server.web.rendering import parse_uuid, render
from server.web.session import login_required

ENROLLED_KEY = "enrolled_odk_device"


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
    # Post/redirect/get, as for a bearer-token device: a reload shows the page again rather than setting up
    # a second device. The password rides in the (signed, HttpOnly) session cookie to the next page only,
    # which takes it out; the database keeps only its hash.
    session[ENROLLED_KEY] = {"device": str(device.id), "login": login, "password": password}
    return redirect(url_for("web.odk_device_enrolled", device_id=device.id), 303)


@bp.get("/devices/odk/<device_id>/enrolled")
@login_required("manager")
def odk_device_enrolled(device_id):
    device = db.session.get(Device, parse_uuid(device_id))
    if device is None:
        abort(404)
    shown = session.pop(ENROLLED_KEY, None)
    if not shown or shown["device"] != str(device.id):
        flash(gettext("The password of “%(label)s” was shown once, when it was set up. If it is lost, revoke "
                      "the device and set up a new one.", label=device.label), "info")
        return redirect(url_for("web.devices"))
    login, password = shown["login"], shown["password"]
    return page(enrolled=device, enrolled_for=device.user.username, login=login, password=password,
                server_url=odk_server_url(), qr=settings_svg(collect_settings(login, password)))
