"""Validation messages as clients see them and the server stores them: no string the client chose.

marshmallow keys its messages by whatever the client sent: an unknown field by its name, a bad entry
of a dict field by the entry's key. A device that put a child's name in a key (by mistake, or a
client bug that sent ``{"Akello Grace": ...}``) would find that name echoed in the answer and stored
in clear in ``sync_batch.results`` and ``mutation_log.result`` (the mutation's payload is encrypted,
its result is not). So every schema a client's data goes through derives from ``ClientSchema``, whose
``handle_error`` rewrites the messages before they leave marshmallow, whichever path loaded them (the
JSON API through webargs, a sync push, a web form, a conflict resolution):

- a key that names a field the schema declares (server-chosen names) keeps its messages;
- unknown fields are counted, not named: ``{"_unknown": ["2 unknown fields."]}``;
- a dict field's bad entries become plain messages with counts, not keyed by the entry's key:
  ``{"scores": ["1 entry, key: Longer than maximum length 64."]}``;
- list positions (``{"concerns": {"2": [...]}}``) and ``_schema`` stay as they are.

Messages are marshmallow's and ours, which name no value the client sent.
"""

from collections import Counter

from marshmallow import RAISE, Schema, ValidationError, fields

UNKNOWN = "_unknown"
SCHEMA = "_schema"


def _texts(value) -> list[str]:
    """Every message string under ``value`` (a list, a string, or a dict of either), in order."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return [str(value)]


def _unknown_message(count: int) -> str:
    return f"{count} unknown field{'s' if count != 1 else ''} (names are not repeated back)."


def _count_in(message: str) -> int:
    head = message.split(" ", 1)[0]
    return int(head) if head.isdigit() else 1


def public_messages(messages, schema: Schema) -> dict:
    """``messages`` (marshmallow's, for data loaded by ``schema``) with no key the client chose."""
    if not isinstance(messages, dict):
        return {SCHEMA: _texts(messages)}
    declared = {f.data_key or name: f for name, f in schema.declared_fields.items()}
    out, unknown = {}, 0
    for key, value in messages.items():
        if key == SCHEMA:
            out[key] = _texts(value)
        elif key == UNKNOWN:  # already rewritten (a nested schema's own handle_error ran first)
            unknown += sum(_count_in(text) for text in _texts(value))
        elif isinstance(key, int):  # a position, when the schema loads many
            out[key] = public_messages(value, schema)
        elif key in declared:
            out[key] = _field_messages(declared[key], value)
        else:
            unknown += 1
    if unknown:
        out[UNKNOWN] = [_unknown_message(unknown)]
    return out


def _field_messages(field: fields.Field, value):
    if not isinstance(value, dict):
        return _texts(value)
    if isinstance(field, fields.Nested):
        return public_messages(value, field.schema)
    if isinstance(field, fields.List | fields.Tuple):
        inner = field.inner if isinstance(field, fields.List) else None
        return {position: (_field_messages(inner, item) if inner is not None else _texts(item))
                for position, item in value.items() if isinstance(position, int)} or _texts(value)
    if isinstance(field, fields.Mapping):
        # {client key: {"key": [...], "value": [...]}}: count entries per message, name none.
        counts = Counter()
        for entry in value.values():
            parts = entry.items() if isinstance(entry, dict) else [("entry", entry)]
            for part, part_messages in parts:
                for text in dict.fromkeys(_texts(part_messages)):
                    counts[(part if part in ("key", "value") else "entry", text)] += 1
        return [f"{n} entr{'ies' if n != 1 else 'y'}, {part}: {text}" for (part, text), n in counts.items()]
    return _texts(value)


class ClientSchema(Schema):
    """Base of every schema that loads what a client sent: unknown fields refused, and refusals
    worded by ``public_messages``."""

    class Meta:
        unknown = RAISE

    def handle_error(self, error: ValidationError, data, *, many: bool, **kwargs):
        raise ValidationError(public_messages(error.normalized_messages(), self), data=error.data,
                              valid_data=error.valid_data)
