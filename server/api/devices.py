"""Field devices: managers enrol them (the token is in this one answer); managers and admins list and
revoke them. Admins do not enrol: a token reads a caseload, and admins see no child (DESIGN §7)."""

from flask import g
from marshmallow import fields, validate

from models import User, db
from models.schemas import Strict
from server.api import Blueprint
from server.auth import require_user
from server.errors import ApiError
from sync.devices import enroll_device, find_device, list_devices, revoke_device

blp = Blueprint("devices", __name__, url_prefix="/api/v1/devices", description="Field devices")

DEVICE_ADMINS = ("manager", "admin")


class Enrolment(Strict):
    user = fields.String(required=True, validate=validate.Length(min=1, max=64))
    label = fields.String(required=True, validate=validate.Length(min=1, max=120))


class Revocation(Strict):
    wipe = fields.Boolean(load_default=False)


def device_body(device) -> dict:
    return {"device_id": str(device.id), "user": device.user.username, "label": device.label,
            "enrolled_at": device.enrolled_at.isoformat(),
            "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
            "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None, "wipe": device.wipe}


@blp.post("")
@blp.arguments(Enrolment)
@require_user("manager")
def enroll(data):
    user = db.session.execute(db.select(User).where(User.username == data["user"])).scalar_one_or_none()
    if user is None:
        raise ApiError(422, "validation_error", "Some fields are not valid.",
                       {"fields": {"user": [f"No user named '{data['user']}'."]}})
    device, token = enroll_device(user, data["label"], by=g.user)
    body = {**device_body(device), "token": token}
    db.session.commit()
    return body, 201


@blp.get("")
@require_user(*DEVICE_ADMINS)
def list_all():
    return {"items": [device_body(d) for d in list_devices()]}


@blp.post("/<uuid:device_id>/revoke")
@blp.arguments(Revocation)
@require_user(*DEVICE_ADMINS)
def revoke(data, device_id):
    device = find_device(device_id)
    if device is None:
        raise ApiError(404, "not_found", "No device with this id.")
    revoke_device(device, by=g.user, wipe=data["wipe"])
    body = device_body(device)
    db.session.commit()
    return body
