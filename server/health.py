"""Probes for load balancers and orchestration.

``GET /healthz`` (liveness): 200 when the database answers, 503 when it does not.
``GET /readyz`` (readiness): also 503 until the database's Alembic revision is the code's head, so a
worker started before ``flask db upgrade`` ran (or after a rollback of the code) takes no traffic.
"""

from functools import cache
from pathlib import Path

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from models import db
from server.errors import error_response

bp = Blueprint("health", __name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
RETRY = {"Retry-After": "5"}


@cache
def code_revision() -> str:
    """The head revision of the migrations shipped with this code (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _unreachable():
    db.session.rollback()
    return error_response(503, "unavailable", "The database cannot be reached.",
                          {"status": "degraded", "database": "unreachable"}, headers=RETRY)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return _unreachable()
    return {"status": "ok", "database": "ok"}


@bp.get("/readyz")
def readyz():
    try:
        database = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        db.session.rollback()
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return _unreachable()
        database = None  # it answers, but was never migrated
    expected = code_revision()
    if database != expected:
        return error_response(503, "not_migrated",
                              "The database schema is not the one this code expects; run 'flask db upgrade'.",
                              {"status": "not_ready", "database_revision": database, "code_revision": expected},
                              headers=RETRY)
    return {"status": "ready", "database": "ok", "revision": expected}
