"""The push envelope of protocol 1 (DESIGN §5): what a device's ``POST /api/v1/sync/push`` body must be.

The envelope is checked as a whole: a body that is not protocol 1, names no batch, or holds a mutation
without an id, an entity or an op is refused with 422 before anything is stored, because the server
could not even say which mutation a result belongs to. What a mutation's ``fields`` hold is checked
per mutation later, so one bad record never blocks the rest of a batch.
"""

from datetime import UTC

from marshmallow import ValidationError, validate, validates_schema
from marshmallow import fields as ma

from models.errors import Problem
from models.field_messages import ClientSchema
from models.plain_load import load
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
    try:
        return load(EnvelopeSchema, body)
    except ValidationError as exc:
        raise Problem("validation_error", "The push envelope is not valid.",
                        {"fields": exc.normalized_messages()}) from None
