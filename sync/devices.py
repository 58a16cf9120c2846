"""Enrolling, authenticating and revoking field devices (DESIGN §5, §7).

A device token is ``<device id>.<secret>``: the id finds the row by primary key, the secret is checked
against its stored SHA-256 in constant time. The secret is shown once, at enrolment, and never stored.
The CLI, the JSON API and the web pages all call these functions.
"""

import hmac
import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_
from sqlalchemy.orm import joinedload

from models import audit
from models.accounts import Device, User
from models.base import db, utcnow
from models.errors import FieldErrors

DEVICE_ROLES = ("caseworker", "manager")
# Writing last_seen_at on every call would turn each pull into a write; a minute's precision is enough.
LAST_SEEN_PRECISION = timedelta(minutes=1)


class DeviceAuthError(Exception):
    """``revoked`` tells the endpoint to answer 403 device_revoked (with ``wipe``) instead of 401."""

    def __init__(self, message: str, device: Device | None = None):
        super().__init__(message)
        self.message, self.device = message, device

    @property
    def revoked(self) -> bool:
        return self.device is not None


def enroll_device(user: User, label: str, by: User | None) -> tuple[Device, str]:
    """Enrol a device for ``user``; return it with its token, which is never shown again. Flushes."""
    label = (label or "").strip()
    errors = {}
    if user is None or not user.active or user.role not in DEVICE_ROLES:
        errors["user"] = ["Devices are enrolled to an active caseworker or manager."]
    if not label or len(label) > 120:
        errors["label"] = ["Give the device a label of 1 to 120 characters (e.g. 'Tecno phone 3')."]
    if errors:
        raise FieldErrors(errors)
    secret = Device.new_secret()
    device = Device(id=uuid.uuid4(), user_id=user.id, label=label, token_hash=Device.hash_secret(secret),
                    enrolled_by_id=by.id if by else None)
    db.session.add(device)
    db.session.flush()
    audit("device.enroll", actor=by, device=device, target=user.username, label=label)
    return device, f"{device.id}.{secret}"


def revoke_device(device: Device, by: User | None, wipe: bool = False) -> Device:
    """Revoke a device; with ``wipe`` it is told to erase its local data. Revoking again may add a wipe."""
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.revoked_by_id = by.id if by else None
    device.wipe = bool(device.wipe or wipe)
    db.session.flush()
    audit("device.revoke", actor=by, device=device, target=device.label, wipe=device.wipe)
    return device


def disable_user(user: User, by: User | None, via: str) -> list[Device]:
    """Disable an account: every session and API token of it ends, and every device enrolled to it is
    revoked with a wipe, so a phone left with a dismissed caseworker erases its caseload at its next
    contact (403 device_revoked, wipe: true). Re-enabling the account does not revive them: the
    person enrols a device again. Flushes; returns the devices it revoked or marked for wipe."""
    user.active = False
    user.end_sessions()
    devices = list(db.session.execute(
        db.select(Device).where(Device.user_id == user.id,
                                or_(Device.revoked_at.is_(None), Device.wipe.is_(False)))
        .order_by(Device.enrolled_at)).scalars())
    for device in devices:
        revoke_device(device, by=by, wipe=True)
    audit("user.disable", actor=by, target=user.username, via=via, devices_wiped=len(devices),
          device_ids=[str(device.id) for device in devices])
    return devices


def device_counts(user_ids) -> dict:
    """``{user_id: {"active": n, "wipe": n}}`` for the users page, in one query."""
    state = case((Device.revoked_at.is_(None), "active"), (Device.wipe.is_(True), "wipe"), else_="revoked")
    rows = db.session.execute(db.select(Device.user_id, state, func.count())
                              .where(Device.user_id.in_(list(user_ids))).group_by(Device.user_id, state))
    counts: dict = {}
    for user_id, kind, n in rows:
        counts.setdefault(user_id, {})[kind] = n
    return counts


_DUMMY_HASH = Device.hash_secret("no-such-device")


def authenticate_device(token: str | None, now: datetime) -> Device:
    """The device a bearer token names. Raises DeviceAuthError (revoked or not) otherwise."""
    device_part, _, secret = (token or "").partition(".")
    try:
        device_id = uuid.UUID(device_part)
    except ValueError:
        device_id = None
    # Its account comes in the same query: admit_device checks it on every push and pull page.
    device = db.session.get(Device, device_id, options=[joinedload(Device.user)]) if device_id and secret else None
    if device is None:
        hmac.compare_digest(Device.hash_secret(secret), _DUMMY_HASH)  # same work either way
        raise DeviceAuthError("Send 'Authorization: Bearer <device token>' as issued at enrolment.")
    if not device.token_matches(secret):
        raise DeviceAuthError("The device token is not valid.")
    return admit_device(device, now)


def admit_device(device: Device, now: datetime) -> Device:
    """A device whose credentials matched, if it may still be used (the sync token or OpenRosa's Basic)."""
    if device.revoked_at is not None:
        raise DeviceAuthError("This device was revoked. Ask your manager to enrol it again.", device)
    if not device.user.active or device.user.role not in DEVICE_ROLES:
        raise DeviceAuthError("The account this device belongs to is disabled.")
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_PRECISION:
        device.last_seen_at = now
    return device


def find_device(device_id) -> Device | None:
    return db.session.get(Device, device_id)


def list_devices() -> list[Device]:
    return list(db.session.execute(db.select(Device).order_by(Device.enrolled_at)).scalars())
