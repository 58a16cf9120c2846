"""Devices: enrol one for a caseworker (the token is shown once, as text and as a QR code), revoke it
with or without a remote wipe, and see when each device last made contact."""

from datetime import timedelta

import segno
from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext
from markupsafe import Markup
from sqlalchemy import or_

from models import Device, User, db, utcnow
from models.errors import Problem
from server.web import bp
from server.web.forms import errors_of
from server.web.paging import paginate
from server.web.rendering import parse_uuid, render
from server.web.session import login_required
from server.whole_numbers import whole_number
from sync.devices import DEVICE_ROLES, enroll_device, revoke_device

DEVICE_ADMINS = ("manager", "admin")
ENROLLED_KEY = "enrolled_device"


def qr_svg(text: str) -> Markup:
    """The enrolment QR code as inline SVG (segno escapes nothing we put in: the text is only data)."""
    svg = segno.make(text, error="m").svg_inline(scale=4, title=gettext("Device enrolment code"))
    label = Markup.escape(gettext("QR code for enrolling the device"))
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))


def enrolment_text(token: str) -> str:
    """What the QR code holds: the server address and the token, so a phone can enrol by scanning."""
    from urllib.parse import urlencode

    return "homecoming:enrol?" + urlencode({"server": current_app.config["BASE_URL"], "token": token})


def _may_hold_a_device():
    return db.select(User).where(User.role.in_(DEVICE_ROLES), User.active.is_(True))


def caseworkers():
    return db.session.execute(_may_hold_a_device().order_by(User.username)).scalars().all()


def active_caseworker(username: str) -> User | None:
    """The active user of a device role named in an enrolment form (a bearer-token or an ODK device)."""
    return db.session.execute(_may_hold_a_device().where(User.username == username)).scalar_one_or_none()


def devices_page(status=200, **extra):
    owner = db.aliased(User)
    stmt = db.select(Device, owner.username).join(owner, owner.id == Device.user_id)
    stale = request.args.get("stale", "")
    stale_days = whole_number(stale)
    if stale_days is not None:
        cutoff = utcnow() - timedelta(days=min(stale_days, 36_500))
        stmt = stmt.where(Device.revoked_at.is_(None),
                          or_(Device.last_seen_at.is_(None), Device.last_seen_at < cutoff))
    if request.args.get("show") != "all" and not stale:
        stmt = stmt.where(Device.revoked_at.is_(None))
    stmt = stmt.order_by(owner.username, Device.enrolled_at)
    return render("devices.html", status, title=gettext("Devices"), page=paginate(stmt, "web.devices"),
                  caseworkers=caseworkers(), stale=stale, stale_days=current_app.config["WEB_DEVICE_STALE_DAYS"], show_all=request.args.get("show") == "all",
                  now=utcnow(), **extra)


@bp.get("/devices")
@login_required(*DEVICE_ADMINS)
def devices():
    return devices_page()


@bp.post("/devices")
@login_required("manager")  # a token reads a caseload: admins, who see no child, do not enrol (DESIGN §7)
def device_enrol():
    label = request.form.get("label", "").strip()
    username = request.form.get("caseworker", "")
    caseworker = active_caseworker(username)
    if caseworker is None:
        return devices_page(422, errors={"caseworker": [gettext("Choose an active caseworker.")]}, form=request.form)
    if label and request.form.get("same_label") != "true" and label_in_use(label):
        return devices_page(409, errors={"label": [gettext(
            "An active device is already called “%(label)s”. Give this one another name, or tick the box "
            "to enrol it under the same name.", label=label)]}, form=request.form, same_label=True)
    try:
        device, token = enroll_device(caseworker, label, by=g.user)
    except Problem as exc:
        db.session.rollback()
        return devices_page(422, errors={"caseworker" if k == "user" else k: v for k, v in errors_of(exc).items()}, form=request.form)
    db.session.commit()
    # Post/redirect/get: a reload shows the page again rather than enrolling a second device. The token
    # rides in the (signed, HttpOnly) session cookie to the next page only, which takes it out.
    session[ENROLLED_KEY] = {"device": str(device.id), "token": token}
    return redirect(url_for("web.device_enrolled", device_id=device.id), 303)


@bp.get("/devices/<device_id>/enrolled")
@login_required("manager")
def device_enrolled(device_id):
    device = db.session.get(Device, parse_uuid(device_id))
    if device is None:
        abort(404)
    shown = session.pop(ENROLLED_KEY, None)
    if not shown or shown["device"] != str(device.id):
        flash(gettext("The token of “%(label)s” was shown once, when it was enrolled. If it is lost, revoke "
                      "the device and enrol it again.", label=device.label), "info")
        return redirect(url_for("web.devices"))
    owner = db.session.get(User, device.user_id)
    return devices_page(200, enrolled=device, enrolled_for=owner.username, token=shown["token"],
                        qr=qr_svg(enrolment_text(shown["token"])))


def label_in_use(label: str) -> bool:
    return db.session.execute(db.select(db.func.count()).select_from(Device).where(
        Device.revoked_at.is_(None), db.func.lower(Device.label) == label.lower())).scalar_one() > 0


@bp.post("/devices/<device_id>/revoke")
@login_required(*DEVICE_ADMINS)
def device_revoke(device_id):
    device = db.session.get(Device, parse_uuid(device_id))
    if device is None:
        abort(404)
    if device.revoked_at is not None:
        flash(gettext("“%(label)s” was already revoked.", label=device.label), "info")
        return redirect(url_for("web.devices"))
    wipe = request.form.get("wipe") == "true"
    revoke_device(device, by=g.user, wipe=wipe)
    db.session.commit()
    flash(gettext("“%(label)s” is revoked and will wipe its data at its next contact.", label=device.label) if wipe
          else gettext("“%(label)s” is revoked.", label=device.label), "success")
    return redirect(url_for("web.devices"))
