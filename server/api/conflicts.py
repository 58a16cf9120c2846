"""Sync conflicts for people: the open ones, one with its base, server and device values per field,
and its resolution field by field (a manager, or the child's caseworker)."""

from flask import g
from marshmallow import fields

from models import audit, db
from models.access import sees_restricted
from models.schemas import Strict
from server.api import Blueprint
from server.api.common import api_actor, commit_and_plan
from server.auth import require_user
from server.errors import ApiError
from sync.conflicts import (
    fields_hidden_from,
    get_conflict,
    list_conflicts,
    resolve_conflict,
    restricted_fields,
)

blp = Blueprint("conflicts", __name__, url_prefix="/api/v1/conflicts", description="Sync conflicts")

RESOLVERS = ("manager", "caseworker")


class ConflictQuery(Strict):
    child_id = fields.UUID()


class Resolution(Strict):
    fields = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)


def conflict_body(conflict, *, values: bool) -> dict:
    body = {"id": str(conflict.id), "child_id": str(conflict.child_id), "entity": conflict.entity,
            "record_id": str(conflict.record_id), "status": conflict.status,
            "fields": conflict.fields, "base_version": conflict.base_version,
            "server_version": conflict.server_version, "created_at": conflict.created_at.isoformat(),
            "device_id": str(conflict.device_id) if conflict.device_id else None,
            "resolved_at": conflict.resolved_at.isoformat() if conflict.resolved_at else None}
    if values:
        hidden = fields_hidden_from(g.user, conflict)
        body["values"] = {
            name: ({"restricted": True} if name in hidden else
                   {"base": conflict.base_values.get(name), "server": conflict.server_values.get(name),
                    "device": conflict.device_values.get(name)})
            for name in conflict.fields
        }
        if conflict.resolution:
            body["resolution"] = {k: v for k, v in conflict.resolution.items() if k not in hidden}
    return body


def _load(conflict_id):
    conflict = get_conflict(g.user, conflict_id)
    if conflict is None:
        raise ApiError(404, "not_found", "No conflict with this id.")
    return conflict


@blp.get("")
@blp.arguments(ConflictQuery, location="query")
@require_user(*RESOLVERS)
def list_open(query):
    rows = list_conflicts(g.user, child_id=query.get("child_id"))
    body = {"items": [conflict_body(c, values=False) for c in rows]}
    audit("conflict.list", actor=g.user, children=[c.child_id for c in rows])
    db.session.commit()
    return body


@blp.get("/<uuid:conflict_id>")
@require_user(*RESOLVERS)
def read(conflict_id):
    conflict = _load(conflict_id)
    body = conflict_body(conflict, values=True)
    audit("conflict.read", actor=g.user, child_id=conflict.child_id, target=conflict.id)
    db.session.commit()
    return body


@blp.post("/<uuid:conflict_id>/resolve")
@blp.arguments(Resolution)
@require_user(*RESOLVERS)
def resolve(data, conflict_id):
    conflict = _load(conflict_id)
    if conflict.status != "open":
        raise ApiError(409, "already_resolved", "This conflict was already resolved.")
    if restricted_fields(conflict) and not sees_restricted(g.user):
        raise ApiError(403, "forbidden", "This conflict involves restricted fields: a manager resolves it.")
    record = resolve_conflict(conflict, data["fields"], api_actor())
    audit("conflict.resolve", actor=g.user, child_id=conflict.child_id, target=conflict.id,
          fields=conflict.fields, via="api")
    body = {**conflict_body(conflict, values=True), "record_version": record.version}
    commit_and_plan(conflict.child_id)
    return body
