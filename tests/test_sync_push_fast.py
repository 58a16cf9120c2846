"""Push writes and answers the same whatever the batch: a registration day in one batch writes the rows
it writes one mutation a batch. (Loading without marshmallow's machinery: tests/test_plain_load.py.)"""

import uuid

from sqlalchemy import inspect

from models import Assessment, Child, Consent, Followup, RecordHistory, StageTransition, db
from tests.sync_server_helpers import child_fields, get, mutation, new_id, people_and_phones

IGNORED = {"id", "child_id", "case_code", "created_at", "updated_at", "seq"}


def registration_day(n=3):
    """Creates only: children, each with a consent, an assessment and a visit done."""
    mutations = []
    for i in range(n):
        child_id = new_id()
        mutations.append(mutation("child", child_id, fields=child_fields(sex=("female", "male")[i % 2])))
        mutations.append(mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "services",
                                                               "given_by": "caregiver", "given_on": "2026-10-02"}))
        mutations.append(mutation("assessment", new_id(), fields={
            "child_id": child_id, "kind": "health", "assessed_on": "2026-10-05", "risk_level": "high",
            "scores": {"distress": 12}, "notes": "Fictional note."}))
        mutations.append(mutation("followup", new_id(), fields={
            "child_id": child_id, "kind": "visit", "due_on": "2026-10-10", "status": "done",
            "completed_on": "2026-10-10", "seen": True, "wellbeing": "good"}, recorded_at=None))
    return mutations


def columns(record) -> dict:
    return {a.key: getattr(record, a.key) for a in inspect(type(record)).column_attrs if a.key not in IGNORED}


def written(mutations) -> list:
    """Per mutation: the record's columns, its history rows and (a child) its transitions, without ids."""
    models = {"child": Child, "consent": Consent, "assessment": Assessment, "followup": Followup}
    out = []
    for m in mutations:
        record = get(models[m["entity"]], m["id"])
        history = db.session.execute(
            db.select(RecordHistory).where(RecordHistory.record_id == record.id)).scalars().all()
        transitions = db.session.execute(
            db.select(StageTransition).where(StageTransition.child_id == record.id)).scalars().all()
        out.append((columns(record),
                    [(h.entity, h.version, h.fields, {k: v for k, v in h.values.items() if k != "child_id"}, h.actor_id, h.device_id, h.source,
                      h.child_id == (record.id if m["entity"] == "child" else record.child_id)) for h in history],
                    [columns(t) for t in transitions]))
    return out


def seqs(mutations) -> list:
    """The seq of each record, a new child's first transition right after the child."""
    models = {"child": Child, "consent": Consent, "assessment": Assessment, "followup": Followup}
    out = []
    for m in mutations:
        record = get(models[m["entity"]], m["id"])
        out.append(record.seq)
        if m["entity"] == "child":
            out.append(db.session.execute(
                db.select(StageTransition.seq).where(StageTransition.child_id == record.id)).scalar_one())
    return out


def test_a_batch_writes_the_rows_one_mutation_a_batch_writes(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    together, apart = registration_day(), registration_day()
    assert [r["status"] for r in cw1.push_ok(*together)] == ["applied"] * len(together)
    for m in apart:
        assert [r["status"] for r in cw1.push_ok(m)] == ["applied"]
    with app.app_context():
        assert written(together) == written(apart)
        together_seq, apart_seq = seqs(together), seqs(apart)
        # In mutation order, one number each, the later batches after the first (commit order).
        assert together_seq == sorted(together_seq) and len(set(together_seq)) == len(together_seq)
        assert together_seq[-1] - together_seq[0] == len(together_seq) - 1
        assert apart_seq == sorted(apart_seq) and min(apart_seq) > max(together_seq)


def test_a_record_created_twice_and_an_update_among_creates(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    consent = mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "services",
                                                    "given_by": "caregiver", "given_on": "2026-10-02"})
    again = {**consent, "mutation_id": new_id(), "fields": {**consent["fields"], "given_by": "child"}}
    # Creates only, but one record created twice: compared with its first version.
    results = cw1.push_ok(mutation("child", child_id, fields=child_fields()), consent, again)
    assert [r["status"] for r in results] == ["applied", "applied", "rejected"]
    assert results[2]["code"] == "id_conflict"  # created twice with other content
    # An update among creates.
    other = new_id()
    results = cw1.push_ok(mutation("child", other, fields=child_fields()),
                          mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "high"}))
    assert [r["status"] for r in results] == ["applied", "applied"]
    with app.app_context():
        assert get(Child, child_id).version == 2 and get(Consent, consent["id"]).given_by == "caregiver"
        assert get(Child, other).version == 1


def test_a_refused_visit_outcome_in_a_batch_of_creates_rejects_that_mutation_only(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    mutations = registration_day(2)
    mutations[3]["fields"] = {**mutations[3]["fields"], "seen": False}  # not seen, without a reason
    results = cw1.push_ok(*mutations)
    assert [r["status"] for r in results] == ["applied"] * 3 + ["rejected"] + ["applied"] * 4
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Followup)).scalar_one() >= 1
        assert db.session.get(Followup, uuid.UUID(mutations[3]["id"])) is None
