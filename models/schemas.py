"""marshmallow schemas for the fields of each record, shared by the JSON API and the sync endpoint
(DESIGN §5: a device's ``fields`` use the same names as the API). Everything a client sends is
validated with ``unknown=RAISE``, and refused with messages that repeat no key the client chose
(models.field_messages).
"""

import functools
import re
from datetime import date

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema
from sqlalchemy import inspect

from models import vocab
from models.districts import District
from models.field_messages import ClientSchema
from models.followups import outcome_problems
from models.lifecycle import STAGES, phase_of
from models.records import json_value
from models.referrals import REFERRAL_STATUSES
from models.sensitivity import RESTRICTED


def one_of(choices):
    return validate.OneOf(choices)


# A NUL character or a lone UTF-16 surrogate (JSON allows "\u0000" and "\ud800") is in no real text:
# PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded to UTF-8 for any database.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Cannot contain a NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff)."

# JSON values nest no deeper than this in anything a client sends (a transition's ``details``):
# deeper structures are no real record, and walking or storing them would exhaust the stack.
MAX_NESTING = 20


def unstorable(value) -> str | None:
    """Why ``value`` (a decoded JSON value) cannot be stored, or None. Iterative: no recursion limit."""
    if type(value) is str:  # the common case, without the walk: this runs on every pushed mutation
        return UNSTORABLE_MESSAGE if UNSTORABLE_TEXT.search(value) else None
    if value is None or type(value) in (bool, int, float):
        return None
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE_TEXT.search(item):
                return UNSTORABLE_MESSAGE
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_NESTING:
                return f"Nested more than {MAX_NESTING} levels deep."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


EMPTY = "Cannot be empty."


class Strict(ClientSchema):
    def on_bind_field(self, field_name, field_obj):
        # marshmallow's "Field may not be null." is shown to people on the web: say it in their words.
        field_obj.error_messages = {**field_obj.error_messages, "null": EMPTY}

    @pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        """Text no database can store is refused, keyed by the field that holds it, for every schema."""
        if not hasattr(data, "keys"):
            return data
        errors = {}
        multi, known = hasattr(data, "getlist"), self.load_fields
        for key in data.keys():
            if key not in known and unstorable(key):  # never echoed: handle_error counts unknown keys
                errors["_schema"] = [UNSTORABLE_MESSAGE]
                continue
            problem = unstorable(data.getlist(key) if multi else data[key])
            if problem:
                errors[key] = [problem]
        if errors:
            raise ValidationError(errors)
        return data


# Pages of a list: offsets past this are nonsense and would overflow the database's integers.
MAX_PAGE = 1_000_000


def page_number():
    return fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


def text(max_len=500, **kw):
    return fields.String(validate=validate.Length(max=max_len), allow_none=True, **kw)


# Dates a programme can mean: nothing before the oldest birth year the schema takes, and nothing planned
# further ahead than a decade. Far-off dates (year 1, 9999) were stored without complaint and then
# skewed reports and due lists.
EARLIEST_DATE = date(1950, 1, 1)
PLANNING_YEARS = 10


def _today():
    from models.base import utcnow

    return utcnow().date()


def no_future(value):
    if value > _today():
        raise ValidationError("Cannot be in the future.")
    not_too_early(value)


def not_too_early(value):
    if value < EARLIEST_DATE:
        raise ValidationError(f"Must be on or after {EARLIEST_DATE.isoformat()}.")


def not_after_this_year(value):
    if value > _today().year:
        raise ValidationError("Cannot be in the future.")


class NotEmpty(fields.String):
    """Text that, when sent, must say something (a child's given name): trimmed, never blank or null.
    Not required, so a client that leaves the field out (an older phone) still registers the child;
    the web's registration form always sends it."""

    def __init__(self, max_len, **kw):
        super().__init__(allow_none=False, validate=validate.Length(max=max_len), **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if not value:
            raise ValidationError(EMPTY)
        return value


def plannable(value):
    """A date that may lie ahead (a visit due, a service ending), within reason."""
    not_too_early(value)
    today = _today()
    if value > today.replace(year=today.year + PLANNING_YEARS, day=min(today.day, 28)):
        raise ValidationError(f"Must be within {PLANNING_YEARS} years from today.")


class ChildFields(Strict):
    given_name = NotEmpty(120)
    family_name = text(120)
    other_names = text(300)
    sex = fields.String(required=True, validate=one_of(vocab.SEXES))
    date_of_birth = fields.Date(allow_none=True, validate=no_future)
    birth_year = fields.Integer(allow_none=True, validate=[validate.Range(min=1950), not_after_this_year])
    age_estimation_method = fields.String(allow_none=True, validate=one_of(vocab.AGE_ESTIMATION_METHODS))
    district = District(allow_none=False)  # from HOMECOMING_DISTRICTS (models.districts); never blank
    sub_county = text(120)
    parish = text(120)
    village = text(120)
    current_location = text(200)
    family_contacts = text(1000)
    identified_on = fields.Date(allow_none=True, validate=no_future)
    exit_place = text(200)
    handed_over_by = text(200)
    caseworker = fields.String(allow_none=True, validate=validate.Length(max=64))
    risk_level = fields.String(allow_none=True, validate=one_of(vocab.RISK_LEVELS))
    child_mother = fields.Boolean()
    disability = fields.Boolean()
    unaccompanied = fields.Boolean()
    armed_group = text(200)
    role_in_group = text(200)
    recruitment = text(1000)
    date_joined = fields.Date(allow_none=True, validate=no_future)
    date_left = fields.Date(allow_none=True, validate=no_future)
    how_left = fields.String(allow_none=True, validate=one_of(vocab.HOW_LEFT))
    sexual_violence = text(1000)
    restricted_notes = text(5000)

    @validates_schema
    def check_dates(self, data, **kwargs):
        errors = {}
        dob, year = data.get("date_of_birth"), data.get("birth_year")
        if dob and year and dob.year != year:
            errors["birth_year"] = ["Does not match the date of birth."]
        if data.get("date_joined") and data.get("date_left") and data["date_left"] < data["date_joined"]:
            errors["date_left"] = ["Cannot be before the date the child joined."]
        if errors:
            raise ValidationError(errors)


class ChildRecordFields(Strict):
    """Fields a device sends for a child's record; the API takes ``child_id`` from the URL."""

    child_id = fields.UUID(required=True)


class ConsentFields(ChildRecordFields):
    purpose = fields.String(required=True, validate=one_of(vocab.CONSENT_PURPOSES))
    given_by = fields.String(required=True, validate=one_of(vocab.CONSENT_GIVERS))
    given_on = fields.Date(required=True, validate=no_future)
    withdrawn_on = fields.Date(allow_none=True, validate=no_future)

    @validates_schema
    def check_dates(self, data, **kwargs):
        if data.get("withdrawn_on") and data.get("given_on") and data["withdrawn_on"] < data["given_on"]:
            raise ValidationError({"withdrawn_on": ["Cannot be before the date consent was given."]})


class AssessmentFields(ChildRecordFields):
    kind = fields.String(required=True, validate=one_of(vocab.ASSESSMENT_KINDS))
    assessed_on = fields.Date(required=True, validate=no_future)
    scores = fields.Dict(keys=fields.String(validate=validate.Length(max=64)),
                         values=fields.Float(allow_nan=False), allow_none=True)
    risk_level = fields.String(allow_none=True, validate=one_of(vocab.RISK_LEVELS))
    notes = text(5000)


class ServiceFields(ChildRecordFields):
    type = fields.String(required=True, validate=one_of(vocab.SERVICE_TYPES))
    provider = text(200)
    status = fields.String(load_default="planned", validate=one_of(vocab.SERVICE_STATUSES))
    started_on = fields.Date(allow_none=True, validate=plannable)
    ended_on = fields.Date(allow_none=True, validate=plannable)
    notes = text(5000)

    @validates_schema
    def check_dates(self, data, **kwargs):
        if data.get("started_on") and data.get("ended_on") and data["ended_on"] < data["started_on"]:
            raise ValidationError({"ended_on": ["Cannot be before the start date."]})


def outcome_errors(data: dict, complete: bool) -> None:
    errors = outcome_problems(data, complete)
    if errors:
        raise ValidationError(errors)


class FollowupFields(ChildRecordFields):
    kind = fields.String(required=True, validate=one_of(vocab.FOLLOWUP_KINDS))
    due_on = fields.Date(required=True, validate=plannable)
    status = fields.String(load_default="scheduled", validate=one_of(vocab.FOLLOWUP_STATUSES))
    completed_on = fields.Date(allow_none=True, validate=no_future)
    seen = fields.Boolean(allow_none=True)
    not_seen_reason = fields.String(allow_none=True, validate=one_of(vocab.NOT_SEEN_REASONS))
    wellbeing = fields.String(allow_none=True, validate=one_of(vocab.WELLBEING))
    risk_level = fields.String(allow_none=True, validate=one_of(vocab.RISK_LEVELS))
    concerns = fields.List(fields.String(validate=one_of(vocab.CONCERNS)), allow_none=True,
                           validate=validate.Length(max=len(vocab.CONCERNS)))
    notes = text(5000)

    @validates_schema
    def check_outcome(self, data, partial, **kwargs):
        outcome_errors(data, complete=not partial)


class VisitOutcome(Strict):
    """What a caseworker records when a follow-up is done, missed or cancelled."""

    status = fields.String(required=True, validate=one_of(("done", "missed", "cancelled")))
    completed_on = fields.Date(allow_none=True, validate=no_future)
    seen = fields.Boolean(allow_none=True)
    not_seen_reason = fields.String(allow_none=True, validate=one_of(vocab.NOT_SEEN_REASONS))
    wellbeing = fields.String(allow_none=True, validate=one_of(vocab.WELLBEING))
    risk_level = fields.String(allow_none=True, validate=one_of(vocab.RISK_LEVELS))
    concerns = fields.List(fields.String(validate=one_of(vocab.CONCERNS)), allow_none=True)
    notes = text(5000)

    @validates_schema
    def check_outcome(self, data, **kwargs):
        outcome_errors(data, complete=True)


class TransitionFields(ChildRecordFields):
    to_stage = fields.String(required=True, validate=one_of(STAGES))
    occurred_on = fields.Date(required=True, validate=not_too_early)  # the future: lifecycle, by its today
    reason = text(2000)
    closure_reason = fields.String(allow_none=True, validate=one_of(vocab.CLOSURE_REASONS))
    details = fields.Dict(keys=fields.String(validate=validate.Length(max=64)), allow_none=True)


class ReferralFields(ChildRecordFields):
    """A referral a device proposes (issue 13); the receiver and limits are checked by
    models.referrals.referral_problems, as on the web and the API."""

    service_type = fields.String(required=True, validate=one_of(vocab.SERVICE_TYPES))
    agency_id = fields.UUID(allow_none=True)
    provider_name = text(120)
    reason = text(1000)


class ReferralStepFields(Strict):
    """A device's update of a referral: one step of its lifecycle, on the day it was taken."""

    status = fields.String(required=True, validate=one_of(REFERRAL_STATUSES))
    occurred_on = fields.Date(allow_none=True, validate=no_future)


class AlertFields(Strict):
    """A device may only acknowledge an alert."""

    status = fields.String(required=True, validate=one_of(("acknowledged",)))


# Per entity, the schema for what a client may send.
FIELD_SCHEMAS = {
    "child": ChildFields,
    "consent": ConsentFields,
    "stage_transition": TransitionFields,
    "assessment": AssessmentFields,
    "service": ServiceFields,
    "followup": FollowupFields,
    "alert": AlertFields,
    "referral": ReferralFields,
    # models.tracing adds tracing_request and trace (it defines their fields; it imports this module).
}


def api_schema(entity: str, **kw) -> Schema:
    """The schema the JSON API loads with: ``child_id`` comes from the URL there, not the body."""
    cls = FIELD_SCHEMAS[entity]
    exclude = ("child_id",) if "child_id" in cls._declared_fields else ()
    return cls(exclude=exclude, **kw)


@functools.cache
def _dumped_keys(model, restricted: bool) -> tuple[str, ...]:
    """The column keys ``dump_record`` emits for a model, worked out once (pulls dump thousands): never a
    column marked ``dumped=False`` (the API adds such a value where its reader may see it)."""
    return tuple(
        attr.key for attr in inspect(model).column_attrs
        if attr.key not in ("seq", "deleted_at")
        and (restricted or attr.columns[0].info.get("sensitivity") != RESTRICTED)
        and attr.columns[0].info.get("dumped", True)
    )


def dump_record(record, *, restricted: bool = False) -> dict:
    """A record as the API and devices see it. Restricted fields only when asked for."""
    out = {}
    for key in _dumped_keys(type(record), restricted):
        if key == "caseworker_id":
            out["caseworker"] = record.caseworker.username if record.caseworker else None
            continue
        out[key] = json_value(getattr(record, key))
    if "stage" in out and type(record).__tablename__ == "child":
        out["phase"] = phase_of(record.stage)
    return out
