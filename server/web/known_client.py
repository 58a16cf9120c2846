"""The "known client" cookie: a browser a username has signed in from before (finding 5).

After a successful sign-in the browser gets a long-lived signed cookie holding a random client id and
digests of the usernames that signed in with it. A later attempt for one of those usernames is
throttled on a counter of its own (models/login_throttle.py), so failures typed by someone else, from
elsewhere or from the same office address, never make the real user wait. The cookie grants nothing
else: the password is still checked, and a forged cookie fails its signature.
"""

import hashlib
import secrets

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "hc_known"
MAX_USERNAMES = 8
LIFETIME_SECONDS = 365 * 24 * 3600


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="known-client")


def _name(username: str) -> str:
    return hashlib.sha256(username.lower().encode()).hexdigest()[:16]


def _read() -> dict | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("c"), str) or not isinstance(value.get("u"), list):
        return None
    return value


def known_client_id(username: str) -> str | None:
    """This browser's client id when ``username`` signed in from it before, else None."""
    value = _read()
    return value["c"] if value and _name(username) in value["u"] else None


def remember_known_client(response, username: str):
    value = _read() or {"c": secrets.token_urlsafe(16), "u": []}
    names = [n for n in value["u"] if n != _name(username)] + [_name(username)]
    value["u"] = names[-MAX_USERNAMES:]
    response.set_cookie(COOKIE, _serializer().dumps(value), max_age=LIFETIME_SECONDS, httponly=True,
                        samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response
