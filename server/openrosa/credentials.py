"""OpenRosa devices: a Device with HTTP Basic credentials (a username and a generated password).

The password is shown once, in the QR code of the settings page, and kept only as a scrypt hash like a
user's password. The device has no bearer token anyone knows, so it can use ``/odk`` and nothing else.
Revoking it (the Devices page, the API, disabling its caseworker) stops it at its next request.

Wrong passwords count against the sign-in throttle (models/login_throttle.py) by address and typed
username, like the web's: a flood of guesses is answered 429 before any password is hashed, so it costs
the guesser a growing wait and the server no scrypt work.
"""

import base64
import binascii
import math
import re
import secrets
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from models.accounts import Device, User
from models.base import db
from models.login_throttle import TOO_MANY, record_failure, record_success, throttle_keys, wait_needed
from server.openrosa.errors import OpenRosaError
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


def authenticate_odk(header: str | None, now: datetime, address: str | None) -> Device:
    """The OpenRosa device these Basic credentials name. Raises OpenRosaError 429 while this address and
    username must wait, DeviceAuthError for missing or wrong credentials (wrong ones counted; the caller
    commits) or a revoked device."""
    given = basic_credentials(header)
    if given is None:  # Collect's first request of each exchange, answered by the Basic challenge
        raise DeviceAuthError("Wrong username or password for this server.")
    username, password = given
    # Prefixed: a web user named like a device keeps a counter of their own.
    keys = throttle_keys(f"odk:{username}", address, None)
    wait = wait_needed(keys, now)
    if wait:
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise OpenRosaError(429, TOO_MANY.format(seconds=seconds), {"Retry-After": str(seconds)})
    device = None
    if USERNAME.match(username):
        device = db.session.execute(db.select(Device).where(Device.odk_username == username)).scalar_one_or_none()
    if device is None:
        check_password_hash(_DUMMY_HASH, password)  # the same work either way
    if device is None or not device.odk_password_matches(password):
        record_failure(keys, now)
        raise DeviceAuthError("Wrong username or password for this server.")
    record_success(keys)
    return admit_device(device, now)
