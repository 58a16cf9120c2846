"""models.plain_load loads exactly as the schema it mirrors: same result, or the schema's own refusal,
for every record schema (whole and partial) and the push envelope, on random input (Hypothesis), and
it really takes its plain path for plainly valid records (else it would be no faster)."""

import copy
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields, validate

from models.districts import allowed
from models.plain_load import _NO, _plain, load
from models.schemas import FIELD_SCHEMAS
from sync.envelope import EnvelopeSchema
from tests.sync_server_helpers import child_fields, envelope, mutation, new_id

RUNS = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TODAY = date.today()

junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 3000), st.floats(allow_nan=True), st.text(max_size=8),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
dates = st.one_of(st.dates(date(1940, 1, 1), TODAY + timedelta(days=4000)).map(date.isoformat),
                  st.sampled_from(["2026-02-30", "20261002", "2026-10-02T00:00", "", "1950-01-01"]))
texts = st.one_of(st.text(max_size=12), st.sampled_from(["  ", " Okello ", "a\x00b", "\ud800", "x" * 130]))


def plausible(field) -> st.SearchStrategy:
    """Values near what the field accepts, so most draws test the plain path and some its edges."""
    choices = [c for v in field.validators if isinstance(v, validate.OneOf) for c in v.choices]
    if choices:
        return st.sampled_from(choices)
    if isinstance(field, fields.Date):
        return dates
    if isinstance(field, fields.UUID):
        return st.one_of(st.uuids().map(str), st.sampled_from(["not-a-uuid", "{12345678123456781234567812345678}"]))
    if isinstance(field, fields.Boolean):
        return st.one_of(st.booleans(), st.sampled_from(["true", 1]))
    if isinstance(field, fields.Integer):
        return st.one_of(st.integers(1940, TODAY.year + 1), st.sampled_from([True, 2012.0, "2012"]))
    if isinstance(field, fields.List):
        return st.lists(plausible(field.inner), max_size=3)
    if isinstance(field, fields.Dict):
        return st.dictionaries(st.text(max_size=4), st.one_of(st.floats(allow_nan=True), st.integers(), st.text()),
                               max_size=3)
    if field.name == "district":
        return st.sampled_from([*allowed(), " kitgum ", "Atlantis"])
    return texts


@st.composite
def records(draw):
    entity = draw(st.sampled_from(sorted(FIELD_SCHEMAS)))
    schema = FIELD_SCHEMAS[entity]()
    names = draw(st.sets(st.sampled_from(sorted(schema.load_fields))))
    data = {name: draw(st.one_of(plausible(schema.load_fields[name]), junk) if draw(st.integers(0, 9)) == 0
                       else plausible(schema.load_fields[name])) for name in names}
    if draw(st.integers(0, 19)) == 0:
        data["colour"] = "red"  # unknown
    return entity, draw(st.booleans()), data


def outcome(how):
    try:
        return "loaded", list(how().items())
    except ValidationError as exc:
        return "refused", exc.normalized_messages()


@RUNS
@given(records())
def test_a_record_loads_as_its_schema_loads_it(record):
    entity, partial, data = record
    cls = FIELD_SCHEMAS[entity]
    expected = outcome(lambda: cls(partial=partial).load(copy.deepcopy(data)))
    event(expected[0])
    assert outcome(lambda: load(cls, copy.deepcopy(data), partial=partial)) == expected


CHILD_ID = str(uuid.uuid4())


@pytest.mark.parametrize(("entity", "partial", "data"), [
    ("child", False, child_fields(birth_year=2012, caseworker="cw1", village="Fictional Pabo")),
    ("child", True, {"risk_level": "high", "district": "Gulu"}),
    ("consent", False, {"child_id": CHILD_ID, "purpose": "services", "given_by": "caregiver", "given_on": "2026-10-02"}),
    ("service", False, {"child_id": CHILD_ID, "type": "education"}),  # status from its load_default
    ("followup", False, {"child_id": CHILD_ID, "kind": "visit", "due_on": "2026-10-10", "status": "done",
                         "completed_on": "2026-10-10", "seen": True, "wellbeing": "good", "concerns": []}),
    ("assessment", False, {"child_id": CHILD_ID, "kind": "health", "assessed_on": "2026-10-05",
                           "scores": {"distress": 12}, "notes": "Fictional note."}),
    ("stage_transition", False, {"child_id": CHILD_ID, "to_stage": "reception", "occurred_on": "2026-10-05",
                                 "details": {"where": "Fictional centre"}}),
])
def test_a_plainly_valid_record_takes_the_plain_path(entity, partial, data):
    plain = _plain(FIELD_SCHEMAS[entity], partial)(copy.deepcopy(data))
    assert plain is not _NO
    assert list(plain.items()) == list(FIELD_SCHEMAS[entity](partial=partial).load(copy.deepcopy(data)).items())


def test_a_plainly_valid_envelope_takes_the_plain_path():
    body = envelope(mutation("child", new_id(), fields=child_fields()),
                    mutation("child", new_id(), op="update", base_version=3, fields={"risk_level": "high"},
                             recorded_at="2026-11-20T10:00:00.123456+03:00"))
    assert _plain(EnvelopeSchema, False)(copy.deepcopy(body)) == EnvelopeSchema().load(copy.deepcopy(body))


def spoil(change):
    body = envelope(mutation("child", new_id(), fields=child_fields()))
    change(body, body["mutations"][0])
    return body


@pytest.mark.parametrize("body", [
    spoil(lambda b, m: m.update(base_version=True)),
    spoil(lambda b, m: m.update(base_version=1)),  # a create names version 0
    spoil(lambda b, m: m.update(op="update")),  # an update names its version
    spoil(lambda b, m: m.update(op="delete")),
    spoil(lambda b, m: m.update(entity="household")),
    spoil(lambda b, m: m.update(id="not-a-uuid")),
    spoil(lambda b, m: m.update(mutation_id=42)),
    spoil(lambda b, m: m.update(recorded_at="2026-11-20T10:00:00")),  # no time zone
    spoil(lambda b, m: m.update(colour="red")),
    spoil(lambda b, m: m.pop("fields")),
    spoil(lambda b, m: m["fields"].update({"": 1})),
    spoil(lambda b, m: m["fields"].update({"x" * 65: 1})),
    spoil(lambda b, m: b.update(protocol=1.0)),
    spoil(lambda b, m: b.update(batch_id=None)),
    spoil(lambda b, m: b.update(extra=True)),
    spoil(lambda b, m: b["mutations"].append("not an object")),
])
def test_an_envelope_not_plainly_valid_is_left_to_the_schema(body):
    assert _plain(EnvelopeSchema, False)(body) is _NO
