"""The JSON API under ``/api/v1``, documented at ``GET /api/openapi.json`` by flask-smorest."""

import json

import flask_smorest
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import current_app, request
from flask_smorest import Api
from webargs.flaskparser import FlaskParser

from server.errors import ApiError


def schema_name(schema) -> str:
    """Distinct OpenAPI names for the create, API (no child_id) and partial (PATCH) forms of a schema."""
    name = resolve_schema_cls(schema).__name__.removesuffix("Fields")
    if getattr(schema, "partial", False):
        name += "Patch"
    elif getattr(schema, "exclude", None):
        name += "Input"
    return name


api = Api(spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)})

OPENAPI = {
    "API_TITLE": "Homecoming",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    },
}


class JsonBodyParser(FlaskParser):
    """webargs' parser, with every undecodable body a 400: webargs itself catches only syntax errors,
    so a number of more than 4,300 digits (ValueError) or deep nesting (RecursionError) became a 500."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            self._handle_invalid_json_error(exc, req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint with ``JsonBodyParser``; every API module uses this one."""

    ARGUMENTS_PARSER = JsonBodyParser()


def raw_body(view):
    """Mark a view that reads a body other than JSON (an attachment's chunk): put it under the route."""
    view.raw_body = True
    return view


def require_json_body():
    """415 for a body that is not JSON, before any parsing (an empty body is fine)."""
    if not request.path.startswith("/api") or request.method not in ("POST", "PUT", "PATCH"):
        return
    if getattr(current_app.view_functions.get(request.endpoint or ""), "raw_body", False):
        return
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
    if has_body and request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"Send JSON with 'Content-Type: application/json' (got '{request.mimetype or 'none'}').")


def register_api(app):
    for key, value in OPENAPI.items():
        app.config.setdefault(key, value)
    api.init_app(app)
    app.before_request(require_json_body)
    from server.auth import check_before_parsing

    app.before_request(check_before_parsing)

    from server.api import (
        agencies,
        alerts,
        attachments,
        auth,
        children,
        conflicts,
        devices,
        records,
        referrals,
        tracing,
        transfers,
    )

    for module in (auth, children, records, alerts, devices, conflicts, tracing, agencies, referrals,
                   attachments, transfers):
        api.register_blueprint(module.blp)
