"""ODK Collect's settings code for a new OpenRosa device, shown once (web page and CLI).

The code is Collect's own format (base64 of zlib-compressed JSON): the server URL, the device's username
and its password, which is never stored in clear. It also asks Collect to delete each form once sent
and to keep its blank forms (and so the caseload file) matching the server's, so a lost phone holds as
little as it can.
"""

import base64
import io
import json
import zlib

import segno
from flask import current_app


def odk_server_url() -> str:
    return current_app.config["BASE_URL"].rstrip("/") + "/odk"


def collect_settings(username: str, password: str) -> str:
    settings = {"general": {"server_url": odk_server_url(), "username": username, "password": password,
                            "form_update_mode": "match_exactly", "autosend": "wifi_and_cellular",
                            "delete_send": True},
                "admin": {}, "project": {"name": "Homecoming"}}
    return base64.b64encode(zlib.compress(json.dumps(settings).encode())).decode()


def settings_qr(payload: str) -> segno.QRCode:
    return segno.make(payload, error="m")


def terminal_qr(payload: str) -> str:
    """The code in block characters, two rows a line, for a terminal to show and a phone to scan."""
    out = io.StringIO()
    settings_qr(payload).terminal(out=out, compact=True)
    return out.getvalue()
