"""Turning an HTML form into the data the domain's marshmallow schemas load.

A browser sends every field as text: an empty box means "no value" (None), an unticked checkbox is
absent (False), and a multi-select or checkbox group sends the name once per value.
"""

from flask import abort, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from models.errors import FieldErrors, Problem
from models.schemas import UNSTORABLE_MESSAGE, UNSTORABLE_TEXT
from server.web import bp

# Field names as people say them, for labels and for messages on the pages.
LABELS = {
    "given_name": _l("Given name"), "family_name": _l("Family name"), "other_names": _l("Other names or aliases"),
    "sex": _l("Sex"), "date_of_birth": _l("Date of birth"), "birth_year": _l("Year of birth"),
    "age_estimation_method": _l("How the age is known"), "district": _l("District"), "sub_county": _l("Sub-county"),
    "parish": _l("Parish"), "village": _l("Village"), "current_location": _l("Where the child lives now"),
    "family_contacts": _l("Family contacts"), "identified_on": _l("Date released or identified"),
    "exit_place": _l("Place of exit"), "handed_over_by": _l("Handed over by"), "caseworker": _l("Caseworker"),
    "risk_level": _l("Risk level"), "child_mother": _l("Child mother"), "disability": _l("Living with a disability"),
    "unaccompanied": _l("Unaccompanied"), "armed_group": _l("Armed group"), "role_in_group": _l("Role in the group"),
    "recruitment": _l("How the child was recruited"), "date_joined": _l("Date joined the group"),
    "date_left": _l("Date left the group"), "how_left": _l("How the child left"), "sexual_violence": _l("Sexual violence"),
    "restricted_notes": _l("Restricted notes"), "stage": _l("Stage"), "stage_since": _l("In this stage since"),
    "needs_review": _l("Flagged for review"), "case_code": _l("Case code"), "deidentified_at": _l("De-identified on"),
    "purpose": _l("Purpose"), "given_by": _l("Given by"), "given_on": _l("Date given"), "withdrawn_on": _l("Date withdrawn"),
    "kind": _l("Kind"), "assessed_on": _l("Date of the assessment"), "notes": _l("Notes"), "type": _l("Service"),
    "provider": _l("Provider"), "status": _l("Status"), "started_on": _l("Start date"), "ended_on": _l("End date"),
    "due_on": _l("Due on"), "to_stage": _l("New stage"), "occurred_on": _l("Date it happened"), "reason": _l("Reason or notes"),
    "closure_reason": _l("Closure reason"),
}

# marshmallow's and the schemas' generic messages, as the pages say them.
PEOPLE_WORDS = {
    "Missing data for required field.": _l("Required."),
    "Cannot be empty.": _l("Cannot be empty."),
    "Cannot be in the future.": _l("Cannot be in the future."),
    "Not a valid date.": _l("Give a date, for example 2026-03-14."),
    "Not a valid integer.": _l("Give a whole number."),
    "Not a valid boolean.": _l("Choose yes or no."),
    UNSTORABLE_MESSAGE: _l("Holds a character that cannot be stored (a NUL, %00). It was taken out of what you "
                           "typed: check the text and save again."),
}


def people_words(message: str) -> str:
    if message.startswith("Must be one of:"):
        return gettext("Choose one of the options offered.")
    if message.startswith("Longer than maximum length"):
        return gettext("Too long: %(n)s characters at most.",
                       n=message.removeprefix("Longer than maximum length ").rstrip("."))
    return str(PEOPLE_WORDS.get(message, message))


def typed(form) -> MultiDict:
    """What the person typed, to show again after a refusal, without the characters no page can hold."""
    return MultiDict([(key, UNSTORABLE_TEXT.sub("", value)) for key, value in form.items(multi=True)])


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
        raise FieldErrors({k: [people_words(str(m)) for m in (v if isinstance(v, list) else [v])]
                           for k, v in messages.items()}) from None


def errors_of(exc: Problem) -> dict[str, list[str]]:
    """Per-field messages of a domain error, with the general message under ``_form``."""
    if isinstance(exc, FieldErrors):
        return dict(exc.errors)
    return {"_form": [exc.message]}


# Forms whose values all go through a schema (which refuses a NUL per field): the page says which
# field held it and keeps the rest of what was typed, instead of a bare 400 that loses the edit.
SCHEMA_FORMS = {"web.child_edit", "web.child_move", "web.followup_outcome",
                "web.child_register", "web.child_add_record", "web.approval_decide"}


@bp.before_request
def refuse_unstorable_input() -> None:
    """400 for a query string or form holding a NUL character: no field can hold one, and PostgreSQL
    refuses it even in a search, so letting it reach a query turned a typo'd link into a 500."""
    checked = (request.args,) if request.endpoint in SCHEMA_FORMS else (request.args, request.form)
    for values in checked:
        for key, value in values.items(multi=True):
            if UNSTORABLE_TEXT.search(key) or UNSTORABLE_TEXT.search(value):
                abort(400, description=f"The field '{UNSTORABLE_TEXT.sub('?', key)}' holds a NUL character "
                                       "(%00), which no field can contain. Remove it and try again.")
