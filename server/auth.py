"""Short-lived bearer tokens for the JSON API, and the decorator that requires one.

A token is a signed, timestamped ``{user id, token nonce}``: nothing is stored, any worker can check
it, and changing the user's nonce (password reset, disable) revokes every token already issued.
"""

import uuid
from datetime import timedelta
from functools import wraps

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from models import User, db, utcnow
from server.errors import ApiError

SALT = "homecoming-api-token"


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue_token(user: User) -> tuple[str, str]:
    minutes = current_app.config["API_TOKEN_MINUTES"]
    token = _serializer().dumps({"u": str(user.id), "n": user.token_nonce})
    expires_at = (utcnow() + timedelta(minutes=minutes)).replace(microsecond=0)
    return token, expires_at.isoformat()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def unauthorized(message="Send 'Authorization: Bearer <token>' from POST /api/v1/auth/token."):
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def user_from_token(token: str) -> User:
    try:
        payload = _serializer().loads(token, max_age=current_app.config["API_TOKEN_MINUTES"] * 60)
        user_id = uuid.UUID(payload["u"])
    except SignatureExpired:
        raise unauthorized("The token has expired; ask for a new one.") from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise unauthorized("The token is not valid.") from None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.token_nonce != payload.get("n"):
        raise unauthorized("The token is no longer valid; ask for a new one.")
    return user


def check_user(roles: tuple[str, ...]) -> User:
    token = bearer_token()
    if not token:
        raise unauthorized()
    g.user = user_from_token(token)
    if roles and g.user.role not in roles:
        raise ApiError(403, "forbidden", f"This needs the role {' or '.join(roles)}.")
    return g.user


def require_user(*roles: str):
    """Require a valid API token; with ``roles``, also one of those roles (403 otherwise).

    The roles are also left on the view (``functools.wraps`` carries them out through flask-smorest's
    decorators), so ``check_before_parsing`` refuses a caller before the body is parsed: otherwise an
    anonymous or wrongly-roled caller got a 422 naming the fields it had got wrong."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            check_user(roles)
            return view(*args, **kwargs)

        wrapper.api_roles = roles
        return wrapper

    return decorate


def check_before_parsing():
    """``before_request`` for the API: the token and role check of ``require_user``, first."""
    view = current_app.view_functions.get(request.endpoint or "")
    roles = getattr(view, "api_roles", None)
    if roles is not None:
        check_user(roles)
