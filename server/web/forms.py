"""Turning an HTML form into the data the domain's marshmallow schemas load.

A browser sends every field as text: an empty box means "no value" (None), an unticked checkbox is
absent (False), and a multi-select or checkbox group sends the name once per value.
"""

from flask import abort, request
from marshmallow import ValidationError

from models.errors import FieldErrors, Problem
from models.schemas import UNSTORABLE_TEXT
from server.web import bp


def form_values(form, names, *, booleans=(), lists=()) -> dict:
    data = {}
    for name in names:
        if name in lists:
            data[name] = [v for v in form.getlist(name) if v] or None
        elif name in booleans:
            data[name] = form.get(name) in ("true", "on", "1", "yes")
        elif name in form:
            value = form.get(name, "").strip()
            data[name] = value if value != "" else None
    return data


def tri_state(value):
    """A yes/no radio pair with nothing chosen: None, not False."""
    return {"true": True, "false": False}.get(value)


def load(schema, data: dict) -> dict:
    """Load with the schema; raise FieldErrors (the domain's own shape) on invalid input."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        raise FieldErrors({k: v if isinstance(v, list) else [str(v)] for k, v in messages.items()}) from None


def errors_of(exc: Problem) -> dict[str, list[str]]:
    """Per-field messages of a domain error, with the general message under ``_form``."""
    if isinstance(exc, FieldErrors):
        return dict(exc.errors)
    return {"_form": [exc.message]}


@bp.before_request
def refuse_unstorable_input() -> None:
    """400 for a query string or form holding a NUL character: no field can hold one, and PostgreSQL
    refuses it even in a search, so letting it reach a query turned a typo'd link into a 500."""
    for values in (request.args, request.form):
        for key, value in values.items(multi=True):
            if UNSTORABLE_TEXT.search(key) or UNSTORABLE_TEXT.search(value):
                abort(400, description=f"The field '{UNSTORABLE_TEXT.sub('?', key)}' holds a NUL character "
                                       "(%00), which no field can contain. Remove it and try again.")
