"""A schema's load, without marshmallow's machinery for the values it plainly accepts.

Why: ``Schema.load`` costs ~80 µs a record (error stores, hooks, one call chain per field), a fifth of
a push. ``load(cls, data)`` runs the same rules from the same definition — the schema's own fields,
their validators, its pre-load hooks and schema validators — as plain loops, for JSON values of the
types each field plainly takes (a ``str`` for a String, an ``int`` for an Integer…). The moment
anything is not plainly valid, the schema itself loads the data, so every refusal and its wording is
the schema's. A field kind not listed here goes through its own ``deserialize``; a schema this cannot
mirror (post-load hooks, ``@validates``, per-field pre/post functions) always goes to marshmallow.
tests/test_plain_load.py checks the two agree on random input (Hypothesis).
"""

import datetime as dt
import functools
import uuid

from marshmallow import EXCLUDE, RAISE, ValidationError, fields, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.validate import Validator

_NO = object()  # "not plainly valid": the schema decides


def load(cls, data, *, partial: bool = False):
    """What ``cls(partial=partial).load(data)`` returns; raises its ``ValidationError``."""
    plain = _plain(cls, partial)
    if plain is not None:
        out = plain(data)
        if out is not _NO:
            return out
    return _schema(cls, partial).load(data)


@functools.cache
def _schema(cls, partial: bool):
    return cls(partial=partial)  # loading is stateless: one instance serves every request


@functools.cache
def _plain(cls, partial: bool):
    schema = _schema(cls, partial)
    hooks = schema._hooks
    if hooks[POST_LOAD] or hooks[VALIDATES] or schema.unknown not in (RAISE, EXCLUDE):
        return None
    pre = []
    for name, many, kwargs in hooks[PRE_LOAD]:
        if many or kwargs.get("pass_original"):
            return None
        pre.append(getattr(schema, name))
    checks = []
    for name, many, kwargs in hooks[VALIDATES_SCHEMA]:
        if many or kwargs.get("pass_original"):
            return None
        checks.append(getattr(schema, name))
    specs = []
    for name, field in schema.load_fields.items():
        value = _value(field, name)
        if value is None:
            return None
        specs.append((field.data_key or name, field.attribute or name, value, field.required, field.load_default))
    wire = frozenset(spec[0] for spec in specs)
    strict = schema.unknown == RAISE

    def plain(data):
        if type(data) is not dict:
            return _NO
        try:
            for hook in pre:
                data = hook(data, many=False, partial=partial, unknown=schema.unknown)
            if strict and not data.keys() <= wire:
                return _NO
            out = {}
            for key, dest, value, required, default in specs:
                raw = data.get(key, missing)
                if raw is missing:
                    if partial:
                        continue
                    if required:
                        return _NO
                    if default is not missing:
                        out[dest] = default() if callable(default) else default
                    continue
                loaded = value(raw, key, data)
                if loaded is _NO:
                    return _NO
                out[dest] = loaded
            for check in checks:
                check(out, partial=partial, many=False, unknown=schema.unknown)
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


# The field kinds loaded here, exactly these classes (a subclass may load differently): what each makes
# of a plain JSON value, or _NO.
_PLAIN = {
    fields.String: lambda v: v if type(v) is str else _NO,
    fields.Integer: lambda v: v if type(v) is int else _NO,  # never a bool: type, not isinstance
    fields.Boolean: lambda v: v if type(v) is bool else _NO,
    fields.UUID: _uuid,
}


def _value(field, name):
    """A function (raw, key, data) -> the loaded value or _NO, doing what ``field.deserialize`` does;
    None when the field has per-field hooks this does not mirror."""
    if field.pre_load or field.post_load:
        return None
    kind = type(field)
    convert = _PLAIN.get(kind)
    if kind is fields.Date and field.format in (None, "iso", "iso8601"):
        convert = _date
    elif kind is fields.List:
        convert = _list(field.inner)
    elif kind is fields.Dict:
        convert = _dict(field.key_field, field.value_field)
    elif (kind is fields.Nested and isinstance(field.nested, type) and not (field.many or field.only or field.exclude)
          and field.unknown is None):
        convert = _plain(field.nested, False)
    if convert is None:
        def deserialize(raw, key, data):  # the field's own code; its refusal goes to the schema
            try:
                return field.deserialize(raw, key, data)
            except ValidationError:
                return _NO
        return deserialize
    validators, allow_none = tuple(field.validators), field.allow_none

    def value(raw, key, data):
        if raw is None:
            return None if allow_none else _NO
        loaded = convert(raw)
        if loaded is _NO:
            return _NO
        for validator in validators:  # as marshmallow's And: a plain function may say False
            if validator(loaded) is False and not isinstance(validator, Validator):
                return _NO
        return loaded

    return value


def _list(inner):
    item = _value(inner, None)
    if item is None:
        return None

    def convert(raw):
        if type(raw) is not list:
            return _NO
        out = [item(v, None, None) for v in raw]
        return _NO if any(v is _NO for v in out) else out

    return convert


def _dict(key_field, value_field):
    keys = _value(key_field, None) if key_field is not None else (lambda k, *_: k)
    values = _value(value_field, None) if value_field is not None else (lambda v, *_: v)
    if keys is None or values is None:
        return None

    def convert(raw):
        if type(raw) is not dict:
            return _NO
        out = {}
        for k, v in raw.items():
            k, v = keys(k, None, None), values(v, None, None)
            if k is _NO or v is _NO:
                return _NO
            out[k] = v
        return out

    return convert
