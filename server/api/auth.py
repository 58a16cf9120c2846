"""``POST /api/v1/auth/token``: a username and password for a short-lived bearer token."""

from flask import request
from marshmallow import fields, validate

from models import audit, db, utcnow
from models.accounts import LoginRefused, authenticate
from models.schemas import Strict
from server.api import Blueprint
from server.auth import issue_token
from server.errors import ApiError

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="API tokens")


class Credentials(Strict):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


@blp.post("/token")
@blp.arguments(Credentials)
@blp.doc(security=[])
def token(creds):
    try:
        user = authenticate(creds["username"], creds["password"], utcnow(), address=request.remote_addr)
    except LoginRefused as refused:
        audit("login.failed", target=creds["username"], ip=request.remote_addr, via="api")
        db.session.commit()
        raise ApiError(401, "unauthorized", str(refused)) from None
    if user.password_temporary:
        raise ApiError(403, "password_change_required", "This password was set by an administrator. Sign in "
                       "on the web and choose your own, then ask for a token again.")
    audit("login", actor=user, ip=request.remote_addr, via="api")
    value, expires_at = issue_token(user)
    db.session.commit()
    return {"token": value, "expires_at": expires_at}
