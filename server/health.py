"""``GET /healthz`` for load balancers: 200 when the database answers, 503 when it does not."""

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from models import db
from server.errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return error_response(503, "unavailable", "The database cannot be reached.",
                              {"status": "degraded", "database": "unreachable"}, headers={"Retry-After": "5"})
    return {"status": "ok", "database": "ok"}
