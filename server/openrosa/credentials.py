"""OpenRosa devices: a Device with HTTP Basic credentials (a username and a generated password).

The password is shown once, in the QR code of the settings page, and kept only as a scrypt hash like a
user's password. The device has no bearer token anyone knows, so it can use ``/odk`` and nothing else.
Revoking it (the Devices page, the API, disabling its caseworker) stops it at its next request.
"""

import base64
import binascii
import re
import secrets
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from models.accounts import Device, User
from models.base import db
from sync.devices import DeviceAuthError, admit_device, enroll_device

_DUMMY_HASH = generate_password_hash("no-such-odk-device")
USERNAME = re.compile(r"^odk-[a-z0-9]{8}$")


def enroll_odk_device(user: User, label: str, by: User | None) -> tuple[Device, str, str]:
    """Enrol an OpenRosa device for ``user``: returns it, its username and its password (shown once)."""
    device, _token = enroll_device(user, label, by)  # the token is dropped: never shown, never usable
    device.odk_username = f"odk-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    device.odk_password_hash = generate_password_hash(password)
    db.session.flush()
    return device, device.odk_username, password


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def authenticate_odk(header: str | None, now: datetime) -> Device:
    """The OpenRosa device these Basic credentials name. Raises DeviceAuthError (revoked or not)."""
    username, password = basic_credentials(header) or ("", "")
    device = None
    if USERNAME.match(username):
        device = db.session.execute(db.select(Device).where(Device.odk_username == username)).scalar_one_or_none()
    if device is None:
        check_password_hash(_DUMMY_HASH, password)  # the same work either way
        raise DeviceAuthError("Wrong username or password for this server.")
    if not device.odk_password_matches(password):
        raise DeviceAuthError("Wrong username or password for this server.")
    return admit_device(device, now)
