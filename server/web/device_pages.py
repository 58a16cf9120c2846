"""Devices: enrol one for a caseworker (the token is shown once, as text and as a QR code), revoke it
with or without a remote wipe, and see when each device last made contact."""

from datetime import timedelta

import segno
from flask import abort, current_app, flash, g, redirect, request, url_for
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


def qr_svg(text: str) -> Markup:
    """The enrolment QR code as inline SVG (segno escapes nothing we put in: the text is only data)."""
    svg = segno.make(text, error="m").svg_inline(scale=4, title="Device enrolment code")
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code for enrolling the device" ', 1))


def enrolment_text(token: str) -> str:
    """What the QR code holds: the server address and the token, so a phone can enrol by scanning."""
    from urllib.parse import urlencode

    return "homecoming:enrol?" + urlencode({"server": current_app.config["BASE_URL"], "token": token})


def caseworkers():
    return db.session.execute(
        db.select(User).where(User.role.in_(DEVICE_ROLES), User.active.is_(True)).order_by(User.username)
    ).scalars().all()


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
    return render("devices.html", status, title="Devices", page=paginate(stmt, "web.devices"),
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
    caseworker = db.session.execute(
        db.select(User).where(User.username == username, User.role.in_(DEVICE_ROLES), User.active.is_(True))
    ).scalar_one_or_none()
    if caseworker is None:
        return devices_page(422, errors={"caseworker": ["Choose an active caseworker."]}, form=request.form)
    try:
        device, token = enroll_device(caseworker, label, by=g.user)
    except Problem as exc:
        db.session.rollback()
        return devices_page(422, errors={"caseworker" if k == "user" else k: v for k, v in errors_of(exc).items()}, form=request.form)
    db.session.commit()
    # Rendered, not redirected: the token is shown in this one response and never stored in clear.
    return devices_page(201, enrolled=device, enrolled_for=caseworker.username, token=token,
                        qr=qr_svg(enrolment_text(token)))


@bp.post("/devices/<device_id>/revoke")
@login_required(*DEVICE_ADMINS)
def device_revoke(device_id):
    device = db.session.get(Device, parse_uuid(device_id))
    if device is None:
        abort(404)
    if device.revoked_at is not None:
        flash(f"'{device.label}' was already revoked.", "info")
        return redirect(url_for("web.devices"))
    wipe = request.form.get("wipe") == "true"
    revoke_device(device, by=g.user, wipe=wipe)
    db.session.commit()
    flash(f"'{device.label}' is revoked{' and will wipe its data at its next contact' if wipe else ''}.", "success")
    return redirect(url_for("web.devices"))
