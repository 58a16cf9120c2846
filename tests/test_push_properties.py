"""Property tests of the push (DESIGN §5, docs/sync-protocol.md): random sequences of batches from
three devices (two of one caseworker, one of another) go through the real endpoint, and every answer
and the final records, history, conflicts and mutation log must equal what the reference model
(tests/push_model.py) derives from the protocol. Also: the push envelope loads exactly as its
marshmallow schema says, whatever fast path sits in front of it.

Bounded and reproducible: a fixed number of examples, derandomized, no example database.
"""

import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from models import Actor, Child, Consent, RecordHistory, StageTransition, db
from models.errors import Problem
from models.lifecycle import STAGES, allowed_targets
from models.records import delete_record, json_value
from models.syncstate import Conflict, MutationLog
from server import create_app
from server.errors import status_of
from sync.devices import enroll_device
from sync.envelope import EnvelopeSchema, load_envelope
from tests.conftest import empty_tables, make_config
from tests.factories import make_user
from tests.push_model import PushModel
from tests.sync_server_helpers import Phone, child_fields, user_named

NS = uuid.UUID("6f1c4a52-9d0e-4f57-8a3b-2c9d7e1f0a64")
CHILDREN, CONSENTS = 3, 2
DEVICES = {"A": "cw1", "B": "cw1", "C": "cw2"}  # a phone and a tablet sharing cw1's caseload; cw2's phone
OCCURRED_ON, GIVEN_ON = "2026-11-02", "2026-11-01"
RUNS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def rid(kind: str, n) -> str:
    return str(uuid.uuid5(NS, f"{kind}{n}"))


# --- what the devices do -------------------------------------------------------------------------------

children = st.integers(0, CHILDREN - 1)
consents = st.integers(0, CONSENTS - 1)
bases = st.sampled_from(["current", "stale", "stale", "first", "first", "ahead"])
child_edits = st.one_of(
    st.builds(lambda r: {"risk_level": r}, st.sampled_from(["low", "medium", "high"])),
    st.builds(lambda d: {"district": d}, st.sampled_from(["Kitgum", "Gulu", "Pader"])),
    st.builds(lambda r, d: {"risk_level": r, "district": d}, st.sampled_from(["low", "medium", "high"]),
              st.sampled_from(["Kitgum", "Gulu", "Pader"])),
)
operations = st.one_of(
    st.tuples(st.just("child_create"), children, st.sampled_from(["low", "high", "robot", "other_cw"])),
    st.tuples(st.just("child_update"), children, bases, child_edits),
    st.tuples(st.just("child_update"), children, bases, child_edits),
    st.tuples(st.just("consent_create"), consents, children, st.sampled_from(["caregiver", "child", "stranger"])),
    st.tuples(st.just("consent_update"), consents, bases, st.sampled_from(["caregiver", "child"])),
    # "next": the child's first allowed move, so that random runs walk far enough to meet closure
    st.tuples(st.just("transition"), children, st.sampled_from([*STAGES, *["next"] * 6])),
    st.tuples(st.just("transition_update"), children),
    # several moves in one batch along the lifecycle, far enough to meet a manager's step
    st.tuples(st.just("walk"), children, st.integers(1, 8)),
    # two edits of one record from the same base in one batch: the second meets the first's change
    st.tuples(st.just("race"), st.sampled_from(["child", "consent"]), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("repeat"), st.integers(0, 50)),  # a mutation sent before, or earlier in the batch
)
steps = st.one_of(
    st.tuples(st.just("push"), st.sampled_from(["A", "A", "B", "C"]), st.lists(operations, min_size=1, max_size=6)),
    st.tuples(st.just("replay_batch"), st.sampled_from(list(DEVICES)), st.integers(0, 20)),
    st.tuples(st.just("delete"), st.sampled_from(["child", "consent"]), st.integers(0, 2)),
)


class Run:
    """One example: the server behind the Flask test client, the model beside it."""

    def __init__(self, app):
        self.app, self.client, self.model = app, app.test_client(), PushModel()
        self.sent: list[dict] = []  # every mutation sent, for replays
        self.batches: list[tuple] = []  # (device, body, first answer's results) of each batch answered 200
        self.serial = 0
        with app.app_context():
            empty_tables()
            make_user("manager", username="mgr")
            tokens = {}
            for name in sorted(set(DEVICES.values())):
                make_user("caseworker", username=name)
            for device, username in DEVICES.items():
                tokens[device] = enroll_device(user_named(username), f"Phone {device}", by=None)[1]
            db.session.commit()
        self.phones = {device: Phone(self.client, token) for device, token in tokens.items()}

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return rid(kind, self.serial)

    def base(self, entity: str, record_id: str, choice: str) -> int:
        rec = self.model.records.get((entity, record_id))
        version = rec.version if rec else 1
        return {"current": version, "stale": max(1, version - 1), "first": 1, "ahead": version + 1}[choice]

    def mutation(self, device: str, op: tuple, batch: list) -> dict:
        user = DEVICES[device]
        kind = op[0]
        if kind == "repeat":
            earlier = self.sent + batch
            if earlier:
                return earlier[op[1] % len(earlier)]
            kind, op = "child_create", ("child_create", 0, "low")
        if kind == "child_create":
            _, c, variant = op
            fields = child_fields(risk_level="low" if variant in ("robot", "other_cw") else variant)
            if variant == "robot":
                fields["sex"] = "robot"
            if variant == "other_cw":
                fields["caseworker"] = "cw2" if user == "cw1" else "cw1"
            return self.envelope_mutation("child", rid("child", c), "create", 0, fields)
        if kind == "child_update":
            _, c, base, fields = op
            return self.envelope_mutation("child", rid("child", c), "update", self.base("child", rid("child", c), base),
                                          dict(fields))
        if kind == "consent_create":
            _, k, c, given_by = op
            return self.envelope_mutation("consent", rid("consent", k), "create", 0, {
                "child_id": rid("child", c), "purpose": "services", "given_by": given_by, "given_on": GIVEN_ON})
        if kind == "consent_update":
            _, k, base, given_by = op
            return self.envelope_mutation("consent", rid("consent", k), "update",
                                          self.base("consent", rid("consent", k), base), {"given_by": given_by})
        if kind == "transition":
            _, c, to_stage = op
            if to_stage == "next":
                child = self.model.records.get(("child", rid("child", c)))
                to_stage = allowed_targets(child.values["stage"])[0] if child else "registered"
            return self.envelope_mutation("stage_transition", self.next_id("transition"), "create", 0, {
                "child_id": rid("child", c), "to_stage": to_stage, "occurred_on": OCCURRED_ON,
                "reason": "Fictional reason for the property test."})
        _, c = op  # transition_update: stage transitions are append-only
        return self.envelope_mutation("stage_transition", self.next_id("transition"), "update", 1, {
            "child_id": rid("child", c), "to_stage": "registered", "occurred_on": OCCURRED_ON})

    def walk(self, c: int, moves: int) -> list[dict]:
        child = self.model.records.get(("child", rid("child", c)))
        stage, batch = child.values["stage"] if child else "identified", []
        for _ in range(moves):
            stage = allowed_targets(stage)[0] if allowed_targets(stage) else "assessed"
            batch.append(self.mutation("A", ("transition", c, stage), batch))
        return batch

    def race(self, entity: str, n: int, same_value: bool) -> list[dict]:
        record_id = rid(entity, n)
        base = self.base(entity, record_id, "current")
        values = [{"risk_level": "medium"}, {"risk_level": "medium" if same_value else "high", "district": "Gulu"}]
        if entity == "consent":
            values = [{"given_by": "caregiver"}, {"given_by": "caregiver" if same_value else "child"}]
        return [self.envelope_mutation(entity, record_id, "update", base, v) for v in values]

    def envelope_mutation(self, entity, record_id, op, base, fields) -> dict:
        return {"mutation_id": self.next_id("mutation"), "entity": entity, "id": record_id, "op": op,
                "base_version": base, "fields": fields, "recorded_at": "2026-11-20T10:00:00+03:00"}

    # --- the steps ------------------------------------------------------------------------------------

    def push(self, device: str, ops: list) -> None:
        batch: list[dict] = []
        for op in ops:
            if op[0] == "race":
                batch += self.race(*op[1:])
            elif op[0] == "walk":
                batch += self.walk(*op[1:])
            else:
                batch.append(self.mutation(device, op, batch))
        body = {"protocol": 1, "batch_id": self.next_id("batch"), "mutations": batch}
        self.sent += batch
        results = self.send(device, body)
        self.batches.append((device, body, results))

    def replay_batch(self, device: str, k: int) -> None:
        if not self.batches:
            return
        first_device, body, first_results = self.batches[k % len(self.batches)]
        results = self.send(device, body)
        if device == first_device:
            assert results == first_results, "a replayed batch answers the stored results, byte for byte"

    def send(self, device: str, body: dict) -> list | None:
        status, expected = self.model.push(device, DEVICES[device], body)
        response = self.phones[device].push(body=body)
        answer = response.get_json()
        assert response.status_code == status, (body, answer)
        if status != 200:
            assert answer["error"]["code"] == expected
            return None
        got = [normal(r) for r in answer["results"]]
        for r in got:
            event(f"{r['status']} {r.get('code') or r.get('original_status') or ''}".strip())
        assert got == [normal(r) for r in expected], body
        for r in answer["results"]:
            assert (r["status"] == "conflict") == ("conflict_id" in r)
        return answer["results"]

    def delete(self, entity: str, n: int) -> None:
        record_id = rid(entity, n)
        if not self.model.delete(entity, record_id):
            return
        with self.app.app_context():
            record = db.session.get({"child": Child, "consent": Consent}[entity], uuid.UUID(record_id))
            delete_record(record, Actor(user=user_named("mgr"), source="web"))
            db.session.commit()

    # --- the final state ------------------------------------------------------------------------------

    def check_state(self) -> None:
        model = self.model
        with self.app.app_context():
            for model_cls, entity in ((Child, "child"), (Consent, "consent")):
                stored = {str(r.id): r for r in db.session.execute(db.select(model_cls)).unique().scalars()}
                expected = {rid_: rec for (e, rid_), rec in model.records.items() if e == entity}
                assert stored.keys() == expected.keys(), entity
                for record_id, rec in expected.items():
                    row = stored[record_id]
                    assert (row.version, row.deleted_at is not None) == (rec.version, rec.deleted), (entity, record_id)
                    assert observed(entity, row) == followed(entity, rec), (entity, record_id)
                    history = db.session.execute(
                        db.select(RecordHistory.version, RecordHistory.fields)
                        .where(RecordHistory.record_id == row.id).order_by(RecordHistory.version)).all()
                    assert [h.version for h in history] == list(range(1, rec.version + 1)), (entity, record_id)
                    assert [(h.version, sorted(h.fields)) for h in history[1:]] == [
                        (v, sorted(names)) for v, names, _ in rec.history[1:]], (entity, record_id)
            transitions = sum(1 for (e, _) in model.records if e == "stage_transition")
            first_stages = sum(1 for (e, _) in model.records if e == "child")
            assert db.session.execute(db.select(db.func.count()).select_from(StageTransition)).scalar_one() == (
                transitions + first_stages)
            conflicts = sorted(
                (c.entity, str(c.record_id), str(c.child_id), tuple(c.fields), c.base_values, c.server_values,
                 c.device_values, c.base_version, c.server_version)
                for c in db.session.execute(db.select(Conflict)).scalars())
            assert conflicts == sorted(
                (c.entity, c.record_id, c.child_id, c.fields, c.base_values, c.server_values, c.device_values,
                 c.base_version, c.server_version) for c in model.conflicts)
            log = dict(db.session.execute(db.select(MutationLog.mutation_id, MutationLog.status)).all())
            assert {str(k): v for k, v in log.items()} == {mid: r["status"] for mid, r in model.seen.items()}


def normal(result: dict) -> dict:
    """What the model predicts of a result: everything but the server-made conflict id and wording."""
    return {k: result[k] for k in ("mutation_id", "status", "version", "code", "conflicting_fields",
                                   "original_status") if k in result}


def observed(entity: str, row) -> dict:
    if entity == "child":
        return {"risk_level": row.risk_level, "district": row.district, "stage": row.stage,
                "stage_since": json_value(row.stage_since), "needs_review": row.needs_review,
                "caseworker": row.caseworker.username}
    return {"child_id": str(row.child_id), "given_by": row.given_by}


def followed(entity: str, rec) -> dict:
    return {k: rec.values[k] if k != "caseworker" else rec.owner for k in observed_keys(entity)}


def observed_keys(entity: str) -> tuple:
    if entity == "child":
        return ("risk_level", "district", "stage", "stage_since", "needs_review", "caseworker")
    return ("child_id", "given_by")


@pytest.fixture(scope="module")
def push_app(migrated):
    app = create_app(make_config(migrated))
    yield app
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


@RUNS
@given(st.lists(steps, min_size=1, max_size=10))
def test_random_batches_answer_as_the_protocol_says(push_app, program):
    run = Run(push_app)
    # A registration day first, so that most random mutations meet records: cw1's phone registers
    # children 0 and 1 and a consent of child 0, cw2's phone registers child 2.
    run.push("A", [("child_create", 0, "low"), ("child_create", 1, "high"), ("consent_create", 0, 0, "child")])
    run.push("C", [("child_create", 2, "low")])
    for step in program:
        getattr(run, step[0])(*step[1:])
    run.check_state()


# --- the envelope --------------------------------------------------------------------------------------

uuid_text = st.uuids().map(str)
valid_mutation = st.fixed_dictionaries({
    "mutation_id": uuid_text, "entity": st.sampled_from(["child", "consent", "stage_transition", "assessment",
                                                         "service", "followup", "alert"]),
    "id": uuid_text, "op": st.just("create"), "base_version": st.just(0),
    "fields": st.dictionaries(st.text(min_size=1, max_size=64), st.one_of(st.none(), st.text(max_size=5),
                                                                          st.integers()), max_size=3),
}, optional={"recorded_at": st.one_of(st.none(), st.sampled_from(
    ["2026-11-20T10:00:00+03:00", "2026-11-20T07:00:00Z", "2026-11-20T10:00:00.123456-05:30"]))})
valid_mutation = st.one_of(valid_mutation, st.tuples(valid_mutation, st.integers(1, 2**40)).map(
    lambda pair: {**pair[0], "op": "update", "base_version": pair[1]}))
odd_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.floats(allow_nan=False), st.text(max_size=8),
                       st.just("not-a-uuid"), st.just("2026-11-20T10:00:00"), st.just("0001-01-01T00:00:00+03:00"),
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=70), st.integers(), max_size=2),
                       st.sampled_from(["create", "update", "delete", "child", "CHILD", "{6f1c4a52-9d0e-4f57-8a3b-2c9d7e1f0a64}"]))
mutation_keys = ("mutation_id", "entity", "id", "op", "base_version", "fields", "recorded_at", "extra")


@st.composite
def envelopes(draw):
    """A plainly valid envelope, then perhaps one to three things broken in it."""
    body = {"protocol": 1, "batch_id": draw(uuid_text), "mutations": draw(st.lists(valid_mutation, max_size=4))}
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["mutation", "mutation", "mutation", "envelope"]))
        if where == "mutation" and isinstance(body["mutations"], list) and body["mutations"]:
            m = body["mutations"][draw(st.integers(0, len(body["mutations"]) - 1))]
            if not isinstance(m, dict):  # the list itself was broken earlier (an odd list value)
                continue
            key = draw(st.sampled_from(mutation_keys))
            if draw(st.booleans()) and key in m:
                del m[key]
            else:
                m[key] = draw(odd_values)
        else:
            key = draw(st.sampled_from(["protocol", "batch_id", "mutations", "other"]))
            body[key] = draw(odd_values)
    return body


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(envelopes())
def test_the_envelope_loads_exactly_as_its_schema_says(body):
    if not isinstance(body, dict) or "protocol" in body and body["protocol"] != 1:
        return  # refused before either way looks at it (a precise message of its own)
    try:
        expected = EnvelopeSchema().load(body)
    except ValidationError as exc:
        expected = exc.normalized_messages()
        with pytest.raises(Problem) as refused:
            load_envelope(body, max_mutations=1000)
        assert (status_of(refused.value), refused.value.code) == (422, "validation_error")
        assert refused.value.details["fields"] == expected
        return
    assert load_envelope(body, max_mutations=1000) == expected
