"""A schema's load without marshmallow's machinery, for what the schema plainly accepts.

Why: ``Schema.load`` costs ~50 µs a record (error stores, hooks, a call chain per field), a large part
of a push. ``load(cls, data)`` runs the same rules from the same definition (the schema's fields, their
validators, its pre-load hooks and schema validators) as plain loops, for JSON values of the type each
field plainly takes. Anything not plainly valid is loaded by the schema itself, so every refusal is
the schema's, worded by it. A field kind not listed here loads through its own ``deserialize``; a
schema this cannot mirror (post-load hooks, ``@validates``) always goes to marshmallow.
tests/test_plain_load.py checks on random input (Hypothesis) that both give the same answer.
"""

import datetime as dt
import functools
import uuid

from marshmallow import EXCLUDE, RAISE, ValidationError, fields, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.validate import Validator

_NO = object()  # not plainly valid: the schema decides


def load(cls, data, *, partial: bool = False):
    """What ``cls(partial=partial).load(data)`` returns; raises its ``ValidationError``."""
    plain = _plain(cls, partial)
    out = _NO if plain is None else plain(data)
    return _schema(cls, partial).load(data) if out is _NO else out


@functools.cache
def _schema(cls, partial: bool):
    return cls(partial=partial)  # stateless: one instance serves every load


def _hooks(schema, tag) -> list | None:
    hooks = schema._hooks[tag]
    return None if any(many or kw.get("pass_original") for _, many, kw in hooks) else \
        [getattr(schema, name) for name, _, _ in hooks]


@functools.cache
def _plain(cls, partial: bool):
    schema = _schema(cls, partial)
    pre, checks, unknown = _hooks(schema, PRE_LOAD), _hooks(schema, VALIDATES_SCHEMA), schema.unknown
    if schema._hooks[POST_LOAD] or schema._hooks[VALIDATES] or pre is None or checks is None \
            or unknown not in (RAISE, EXCLUDE):
        return None
    specs = [(f.data_key or name, f.attribute or name, _value(f), f.required, f.load_default)
             for name, f in schema.load_fields.items()]
    wire = frozenset(spec[0] for spec in specs)

    def plain(data):
        if type(data) is not dict:
            return _NO
        try:
            for hook in pre:
                data = hook(data, many=False, partial=partial, unknown=unknown)
            if unknown == RAISE and not data.keys() <= wire:
                return _NO
            out = {}
            for key, dest, value, required, default in specs:
                raw = data.get(key, missing)
                if raw is not missing:
                    out[dest] = value(raw, key, data)
                    if out[dest] is _NO:
                        return _NO
                elif required and not partial:
                    return _NO
                elif default is not missing and not partial:
                    out[dest] = default() if callable(default) else default
            for check in checks:
                check(out, partial=partial, many=False, unknown=unknown)
        except ValidationError:
            return _NO
        return out

    return plain


def _uuid(value):
    try:
        return uuid.UUID(value) if type(value) is str else _NO
    except ValueError:
        return _NO


def _date(value):
    try:
        return dt.date.fromisoformat(value) if type(value) is str else _NO
    except ValueError:
        return _NO


def _aware(value):
    try:
        out = dt.datetime.fromisoformat(value) if type(value) is str else _NO
    except ValueError:
        return _NO
    return out if out is _NO or out.utcoffset() is not None else _NO  # naive: refused


def _list(inner):
    item = _value(inner)

    def convert(raw):
        out = [item(v, None, None) for v in raw] if type(raw) is list else _NO
        return _NO if out is _NO or any(v is _NO for v in out) else out

    return convert


def _dict(key_field, value_field):
    keys = _value(key_field) if key_field is not None else lambda k, *_: k
    values = _value(value_field) if value_field is not None else None

    def convert(raw):
        if type(raw) is not dict:
            return _NO
        if values is None:  # values taken as they are (a push's ``fields``): only the keys to check
            out = {keys(k, None, None): v for k, v in raw.items()}
        else:
            out = {keys(k, None, None): values(v, None, None) for k, v in raw.items()}
            if any(v is _NO for v in out.values()):
                return _NO
        return _NO if _NO in out or len(out) != len(raw) else out

    return convert


# Exactly these classes (a subclass may load differently): what each makes of a JSON value, or _NO.
_PLAIN = {
    fields.String: lambda v: v if type(v) is str else _NO,
    fields.Integer: lambda v: v if type(v) is int else _NO,  # type, not isinstance: never a bool
    fields.Boolean: lambda v: v if type(v) is bool else _NO,
    fields.UUID: _uuid,
}


def _value(field):
    """(raw, key, data) -> what ``field.deserialize`` returns, or _NO where it would refuse."""
    kind, convert = type(field), _PLAIN.get(type(field))
    if kind is fields.Date and field.format in (None, "iso", "iso8601"):
        convert = _date
    elif kind is fields.AwareDateTime and field.format in ("iso", "iso8601") and field.default_timezone is None:
        convert = _aware
    elif kind is fields.List:
        convert = _list(field.inner)
    elif kind is fields.Dict:
        convert = _dict(field.key_field, field.value_field)
    elif kind is fields.Nested and isinstance(field.nested, type) and not (field.many or field.only or field.exclude
                                                                           or field.unknown):
        convert = _plain(field.nested, False)
    if convert is None or field.pre_load or field.post_load:
        def deserialize(raw, key, data):  # the field's own code
            try:
                return field.deserialize(raw, key, data)
            except ValidationError:
                return _NO
        return deserialize
    validators, allow_none = tuple(field.validators), field.allow_none

    if not validators:
        def value(raw, key, data):
            if raw is None:
                return None if allow_none else _NO
            return convert(raw)

        return value

    def validated(raw, key, data):
        if raw is None:
            return None if allow_none else _NO
        loaded = convert(raw)
        if loaded is not _NO:
            for validator in validators:  # as marshmallow's And: a plain function may answer False
                if validator(loaded) is False and not isinstance(validator, Validator):
                    return _NO
        return loaded

    return validated
