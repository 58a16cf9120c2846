"""One error shape for the whole app: ``{"error": {"code", "message", "details"}}`` (DESIGN §4).

Every handler is registered here, once. A ``Problem`` (models.errors) carries a code; this module, and
only it, maps codes to HTTP statuses. Nothing a client sends can turn into a 500 or an HTML error page under ``/api``.
"""

import logging

from flask import jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from models.errors import Problem

log = logging.getLogger(__name__)

# A code not named here is 422: the request was understood and refused.
PROBLEM_STATUS = {
    "invalid_cursor": 400,
    "payload_too_large": 413,
    "resync_required": 409,
    "invalid_transition": 422,
    "manager_only": 403,
    "record_deleted": 409,
    "record_deidentified": 409,
    "id_conflict": 409,
    "validation_error": 422,
    "out_of_scope": 404,
    "offset_mismatch": 409,
    "upload_incomplete": 409,
    "not_agency_manager": 403,
    "transfer_pending": 409,
}

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "version_mismatch", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 428: "precondition_required",
    429: "too_many_requests", 503: "unavailable",
}


def status_of(problem: Problem) -> int:
    return PROBLEM_STATUS.get(problem.code, 422)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers=None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}
        self.extra = extra or {}


def error_response(status, code, message, details=None, headers=None, extra=None):
    body = {"error": {"code": code, "message": message, "details": details or {}}, **(extra or {})}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def wants_json() -> bool:
    return request.path.startswith("/api") or request.path in ("/healthz", "/readyz", "/metrics") or request.is_json


def register_error_handlers(app):
    @app.teardown_appcontext
    def close_session(_exc):
        """Close the request's session before Flask-SQLAlchemy's own teardown does (teardowns run last
        registered first). On a connection PostgreSQL's restart cut, the rollback of closing fails; raised
        here it would turn an answered request (often its 503) into gunicorn's bare HTML 500, so the
        session is invalidated instead: the dead connection is discarded, never returned to the pool."""
        from models import db

        try:
            db.session.close()
        except DBAPIError:
            log.warning("database connection lost at the end of a request; discarded")
            db.session().invalidate()

    @app.errorhandler(ApiError)
    def api_error(exc):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers, exc.extra)

    @app.errorhandler(Problem)
    def problem(exc):
        from models import db

        db.session.rollback()
        if not wants_json() and app.config.get("HTML_ERRORS"):
            return app.config["HTML_ERRORS"](exc)
        return error_response(status_of(exc), exc.code, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def validation_error(exc):
        return error_response(422, "validation_error", "Some fields are not valid.",
                              {"fields": exc.normalized_messages()})

    @app.errorhandler(OperationalError)
    def database_unavailable(exc):
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return error_response(503, "unavailable", "The database cannot be reached. Try again shortly.",
                              headers={"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def http_error(exc):
        status = exc.code or 500
        if not wants_json() and app.config.get("HTML_ERRORS"):
            return app.config["HTML_ERRORS"](exc)
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            return error_response(413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes.",
                                  {"limit_bytes": limit})
        if messages:
            # webargs (through flask-smorest) reports per location; clients only send JSON bodies
            # and query strings, so flatten one level.
            fields = {}
            for location_messages in messages.values():
                fields.update(location_messages if isinstance(location_messages, dict) else {"_body": location_messages})
            if status == 400 or fields.get("_body") == ["Invalid JSON body."]:
                return error_response(400, "malformed_json", "The body is not valid JSON.")
            return error_response(422, "validation_error", "Some fields are not valid.", {"fields": fields})
        code = HTTP_CODES.get(status, "error")
        return error_response(status, code, exc.description or code.replace("_", " "))

    @app.errorhandler(Exception)
    def unexpected(exc):
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return database_unavailable(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json() and app.config.get("HTML_ERRORS"):
            return app.config["HTML_ERRORS"](exc)
        return error_response(500, "internal_error", "Something went wrong on the server; it was logged.")
