"""The push envelope of protocol 1 (DESIGN §5): what a device's ``POST /api/v1/sync/push`` body must be.

The envelope is checked as a whole: a body that is not protocol 1, names no batch, or holds a mutation
without an id, an entity or an op is refused with 422 before anything is stored, because the server
could not even say which mutation a result belongs to. What a mutation's ``fields`` hold is checked
per mutation later, so one bad record never blocks the rest of a batch.
"""

import uuid
from datetime import UTC

from marshmallow import ValidationError, validate, validates_schema
from marshmallow import fields as ma

from models.errors import Problem
from models.field_messages import ClientSchema
from models.records import ENTITIES

PROTOCOL = 1
OPS = ("create", "update")


def in_utc_range(value) -> None:
    """A device clock is only information, but it is stored in UTC: 0001-01-01T00:00+03:00 has none."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Out of range once converted to UTC.") from None


class MutationSchema(ClientSchema):
    mutation_id = ma.UUID(required=True)
    entity = ma.String(required=True, validate=validate.OneOf(list(ENTITIES)))
    id = ma.UUID(required=True)
    op = ma.String(required=True, validate=validate.OneOf(OPS))
    base_version = ma.Integer(required=True, strict=True, validate=validate.Range(min=0))
    # ``fields`` on the wire; a Schema attribute cannot be called that.
    changes = ma.Dict(keys=ma.String(validate=validate.Length(min=1, max=64)), required=True,
                      data_key="fields")
    recorded_at = ma.AwareDateTime(load_default=None, allow_none=True, validate=in_utc_range)

    @validates_schema
    def check_base(self, data, **kwargs):
        if data.get("op") == "create" and data.get("base_version") not in (None, 0):
            raise ValidationError({"base_version": ["A create has base_version 0."]})
        if data.get("op") == "update" and data.get("base_version") == 0:
            raise ValidationError({"base_version": ["An update names the version it was made from (1 or more)."]})


class EnvelopeSchema(ClientSchema):
    protocol = ma.Integer(required=True, strict=True)
    batch_id = ma.UUID(required=True)
    mutations = ma.List(ma.Nested(MutationSchema), required=True)


def load_envelope(body, max_mutations: int) -> dict:
    """Validate a decoded JSON body; return it typed. Raises a Problem (payload_too_large, validation_error) otherwise."""
    if not isinstance(body, dict):
        raise Problem("validation_error", "The body must be a JSON object (the push envelope).",
                        {"fields": {"_schema": ["Expected an object with protocol, batch_id, mutations."]}})
    protocol = body.get("protocol")
    if "protocol" in body and protocol != PROTOCOL:
        raise Problem("validation_error",
                        f"This server speaks sync protocol {PROTOCOL}; the request asked for protocol "
                        f"{protocol!r}. Update the app, or send protocol {PROTOCOL}.",
                        {"fields": {"protocol": [f"Must be {PROTOCOL}."]}, "supported": [PROTOCOL]})
    mutations = body.get("mutations")
    if isinstance(mutations, list) and len(mutations) > max_mutations:
        raise Problem("payload_too_large",
                        f"A batch holds at most {max_mutations} mutations; this one has {len(mutations)}. "
                        "Split it into smaller batches.",
                        {"limit_mutations": max_mutations, "mutations": len(mutations)})
    plain = _plain_envelope(body)
    if plain is not None:
        return plain
    try:
        return _ENVELOPE.load(body)
    except ValidationError as exc:
        raise Problem("validation_error", "The push envelope is not valid.",
                        {"fields": exc.normalized_messages()}) from None


# Loading is stateless: one instance serves every request (building one copies its fields).
_ENVELOPE = EnvelopeSchema()
_MUTATION = MutationSchema()
_RECORDED_AT = _MUTATION.fields["recorded_at"]
_ENVELOPE_KEYS = frozenset(("protocol", "batch_id", "mutations"))
_MUTATION_KEYS = frozenset(("mutation_id", "entity", "id", "op", "base_version", "fields", "recorded_at"))
_MUTATION_REQUIRED = _MUTATION_KEYS - {"recorded_at"}


def _plain_envelope(body: dict) -> dict | None:
    """The envelope as ``EnvelopeSchema`` loads it, when it is plainly valid; None otherwise, and the
    schema then decides and words the errors.

    Why: marshmallow spends ~0.1 ms on each mutation of a batch, a fifth of a push; this checks the
    same rules with plain comparisons. Anything not plainly valid (a wrong type, an unknown key, a
    value the schema might coerce) takes the schema's path, so the answers stay the schema's.
    """
    if body.keys() != _ENVELOPE_KEYS or type(body["protocol"]) is not int or type(body["mutations"]) is not list:
        return None
    batch_id = _uuid(body["batch_id"])
    if batch_id is None:
        return None
    mutations = []
    for raw in body["mutations"]:
        mutation = _plain_mutation(raw)
        if mutation is None:
            return None
        mutations.append(mutation)
    return {"protocol": body["protocol"], "batch_id": batch_id, "mutations": mutations}


def _plain_mutation(raw) -> dict | None:
    if type(raw) is not dict or not _MUTATION_REQUIRED <= raw.keys() <= _MUTATION_KEYS:
        return None
    entity, op, base, changes = raw["entity"], raw["op"], raw["base_version"], raw["fields"]
    if type(entity) is not str or entity not in ENTITIES or type(base) is not int:
        return None
    if not ((op == "create" and base == 0) or (op == "update" and base >= 1)):  # MutationSchema.check_base
        return None
    if type(changes) is not dict or not all(type(k) is str and 1 <= len(k) <= 64 for k in changes):
        return None
    mutation_id, record_id = _uuid(raw["mutation_id"]), _uuid(raw["id"])
    if mutation_id is None or record_id is None:
        return None
    recorded_at = raw.get("recorded_at")
    if recorded_at is not None:
        try:
            recorded_at = _RECORDED_AT.deserialize(recorded_at, "recorded_at", raw)
        except ValidationError:
            return None
    return {"mutation_id": mutation_id, "entity": entity, "id": record_id, "op": op, "base_version": base,
            "changes": dict(changes), "recorded_at": recorded_at}


def _uuid(value) -> uuid.UUID | None:
    """What ``fields.UUID`` makes of a JSON string (``uuid.UUID(value)``), or None."""
    if type(value) is not str:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
