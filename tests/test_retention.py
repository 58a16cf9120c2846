"""Retention (DESIGN §7, issue 8 finding 7): closed cases de-identified after RETENTION_DAYS, the
indicators unchanged, devices told, dry run, resume after a crash, the audit, the command."""

import uuid
from datetime import date

import pytest
from sqlalchemy import select, text

from models import (
    Actor,
    Assessment,
    AuditEvent,
    Child,
    Device,
    Followup,
    RecordHistory,
    ScopeChange,
    Service,
    db,
)
from models import indicators as ind
from models.changes import current_seq
from models.errors import RecordDeidentified
from models.records import create_record, transition, update_record
from models.retention import ERASED, count_due, run
from models.search import ChildSearchToken
from models.syncstate import Conflict, MutationLog, SyncBatch
from sync.pull import pull
from tests.factories import make_child, make_user, walk

CLOSE = ["registered", "assessed", "reunified", "follow_up", "closure_pending", "closed"]
DAYS = 1095
AFTER = date(2028, 6, 1)  # more than DAYS after the closures below (2025-03)
PERIOD = ind.Period(date(2024, 1, 1), date(2026, 12, 31))
SECRET = "Fictional-Secret-Okello"


def closed_child(cw, manager, **fields):
    child = make_child(cw, given_name=SECRET, other_names="Fictional alias", village="Fictional village",
                       family_contacts="+256 700 000000", date_of_birth=date(2009, 5, 4),
                       armed_group="Fictional group", restricted_notes="Fictional restricted", **fields)
    actor = Actor(user=manager, source="api")
    create_record("assessment", {"child_id": child.id, "kind": "health", "assessed_on": date(2025, 1, 25),
                                 "notes": "Fictional assessment note", "scores": {"a": 1}}, actor)
    create_record("service", {"child_id": child.id, "type": "education", "status": "active",
                              "started_on": date(2025, 2, 1), "provider": "Fictional school",
                              "notes": "Fictional service note"}, actor)
    create_record("followup", {"child_id": child.id, "kind": "visit", "due_on": date(2025, 2, 15),
                               "status": "done", "completed_on": date(2025, 2, 14), "seen": True,
                               "concerns": ["re_recruitment"], "notes": "Fictional visit note"}, actor)
    walk(child, CLOSE, actor)
    return child


def sync_traces(child, device):
    """A conflict, a logged mutation and its batch's stored answer about ``child``."""
    batch = SyncBatch(batch_id=uuid.uuid4(), device_id=device.id, user_id=device.user_id,
                      results=[{"mutation_id": None, "status": "rejected", "code": "validation_error",
                                "message": "Some fields are not valid.", "errors": {SECRET: ["Unknown field."]}}])
    mid = uuid.uuid4()
    batch.results[0]["mutation_id"] = str(mid)
    db.session.add(batch)
    db.session.flush()
    db.session.add(MutationLog(mutation_id=mid, batch_id=batch.batch_id, device_id=device.id, position=0,
                               entity="child", record_id=child.id, op="update",
                               payload={"data": {"given_name": SECRET}}, status="rejected",
                               result={"code": "validation_error", "errors": {SECRET: ["Unknown field."]}}))
    db.session.add(Conflict(child_id=child.id, entity="child", record_id=child.id, base_version=1,
                            server_version=2, fields=["given_name"], base_values={"given_name": SECRET},
                            server_values={"given_name": SECRET}, device_values={"given_name": SECRET + "2"}))
    return batch


def programme():
    cw, manager = make_user("caseworker"), make_user("manager")
    device = Device(user_id=cw.id, label="Fictional phone", token_hash="0" * 64)
    db.session.add(device)
    old = closed_child(cw, manager, sex="male", birth_year=None)
    kept = make_child(cw, given_name="Fictional-Open", district="Gulu", birth_year=2010)
    walk(kept, ["registered", "assessed"], Actor(user=manager, source="api"))
    batch = sync_traces(old, device)
    db.session.commit()
    return cw, manager, device, old, kept, batch


def indicators():
    children = {key: sorted(ind.count_children(key, PERIOD), key=repr) for key in ind.CHILD_INDICATORS}
    return (children, sorted(ind.followups_on_time(PERIOD), key=repr),
            sorted(ind.closures_by_reason(PERIOD), key=repr))


def test_a_closed_case_is_de_identified_and_the_indicators_do_not_move(ctx):
    cw, manager, device, old, kept, batch = programme()
    before = indicators()
    assert before[0]["school_or_training"] and before[0]["rerecruited_or_missing"]
    cursor = current_seq(db.session)
    old_id, old_version, old_code = old.id, old.version, old.case_code
    batch_id, device_id, kept_id = batch.batch_id, device.id, kept.id
    db.session.expunge_all()

    result = run(AFTER, DAYS, batch_size=10)
    assert result.counts.children == 1 and result.case_codes == [old_code]
    assert indicators() == before

    child = db.session.get(Child, old_id)
    assert child.deidentified_at is not None and child.version == old_version + 1
    assert all(getattr(child, name) is None for name in ERASED[Child])
    assert "given_name" in ERASED[Child] and "armed_group" in ERASED[Child] and "village" in ERASED[Child]
    # Aggregate fields survive.
    assert (child.sex, child.district, child.stage, child.birth_year) == ("male", "Kitgum", "closed", 2009)
    for model in (Assessment, Service, Followup):
        for record in db.session.execute(select(model).where(model.child_id == old_id)).scalars():
            assert all(getattr(record, name) is None for name in ERASED[model])
    assert db.session.execute(select(Followup.concerns).where(Followup.child_id == old_id)).scalar() == [
        "re_recruitment"]
    history = db.session.execute(select(RecordHistory).where(RecordHistory.child_id == old_id)
                              .order_by(RecordHistory.id)).scalars().all()
    assert history and all(h.values == {} for h in history)
    assert history[-1].version == old_version + 1 and "given_name" in history[-1].fields
    conflict = db.session.execute(select(Conflict)).scalar_one()
    assert conflict.base_values == conflict.server_values == conflict.device_values == {}
    logged = db.session.execute(select(MutationLog)).scalar_one()
    assert logged.payload == {} and logged.result is None and logged.status == "rejected"
    answered = db.session.get(SyncBatch, batch_id).results
    assert answered == [{"mutation_id": str(logged.mutation_id), "status": "rejected", "code": "validation_error"}]
    # Nothing in clear anywhere in the database names the child any more.
    for table in ("child", "sync_batch", "mutation_log", "audit_event"):
        dump = repr(db.session.execute(text(f"SELECT * FROM {table}")).all())
        assert SECRET not in dump

    # Its name-search tokens are gone; the open case keeps its own.
    tokens = select(ChildSearchToken.child_id).distinct()
    assert db.session.execute(tokens).scalars().all() == [kept_id]

    # The open case is untouched.
    assert db.session.get(Child, kept_id).given_name == "Fictional-Open"
    # The caseworker's devices drop the child and its records at their next pull.
    assert db.session.execute(select(ScopeChange.kind).where(ScopeChange.child_id == old_id)).scalars().all() == [
        "remove"]
    changes = list(pull(db.session.get(Device, device_id), cursor, 500).changes)
    about = [c for c in changes if c["id"] == str(old_id) or c.get("data", {}).get("child_id") == str(old_id)]
    assert about and all(c["op"] == "remove" for c in about)
    assert {"entity": "child", "id": str(old_id), "version": old_version + 1, "op": "remove"} in changes
    # Audited with case codes and counts, never a name.
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "retention_deidentified")).scalar_one()
    assert event.details["case_codes"] == [child.case_code] and event.details["children"] == 1
    assert SECRET not in repr(event.details)

    # Skipped from then on; neither edited nor reopened.
    assert count_due(AFTER, DAYS) == 0 and run(AFTER, DAYS).counts.children == 0
    with pytest.raises(RecordDeidentified):
        update_record(child, {"given_name": "Fictional"}, Actor(user=manager, source="api"))
    with pytest.raises(RecordDeidentified):
        transition(child, "assessed", Actor(user=manager, source="api"), occurred_on=AFTER, reason="Back",
                   today=AFTER)
    with pytest.raises(RecordDeidentified):
        create_record("followup", {"child_id": old_id, "kind": "visit", "due_on": AFTER,
                                   "notes": "Fictional note"}, Actor(user=manager, source="api"))


def test_not_before_the_retention_period_has_run_out(ctx):
    programme()
    closed_on = date(2025, 3, 11)  # the walk's last step
    assert db.session.execute(select(Child.stage_since).where(Child.stage == "closed")).scalar() == closed_on
    assert count_due(date(2028, 3, 9), DAYS) == 0
    assert count_due(date(2028, 3, 10), DAYS) == 1


def test_dry_run_changes_nothing(ctx):
    programme()

    def snapshot():
        return [repr(db.session.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all())
                for t in ("child", "assessment", "record_history", "conflict", "mutation_log", "sync_batch",
                          "audit_event", "scope_change", "change_counter")]

    before = snapshot()
    result = run(AFTER, DAYS, dry_run=True)
    assert result.due == 1 and len(result.case_codes) == 1 and result.counts.children == 0
    assert snapshot() == before


def test_a_run_killed_half_way_is_resumed_by_running_it_again(ctx):
    cw, manager = make_user("caseworker"), make_user("manager")
    for _ in range(3):
        closed_child(cw, manager)
    db.session.commit()

    class Killed(Exception):
        pass

    def die(n):
        raise Killed

    with pytest.raises(Killed):
        run(AFTER, DAYS, batch_size=1, progress=die)
    db.session.rollback()
    done = db.session.execute(select(Child.id).where(Child.deidentified_at.is_not(None))).scalars().all()
    assert len(done) == 1 and count_due(AFTER, DAYS) == 2
    result = run(AFTER, DAYS, batch_size=1)
    assert result.counts.children == 2 and count_due(AFTER, DAYS) == 0
    assert db.session.execute(select(Child.given_name)).scalars().all() == [None] * 3
    audits = db.session.execute(select(AuditEvent).where(AuditEvent.action == "retention_deidentified")).scalars()
    assert sum(a.details["children"] for a in audits) == 3


def test_flask_retention_run_dry_run_then_run(app, runner):
    with app.app_context():
        programme()
    out = runner.invoke(args=["retention", "run", "--dry-run", "--as-of", "2028-06-01"])
    assert out.exit_code == 0, out.output
    assert "1 cases due; nothing changed" in out.output and "due case " in out.output
    out = runner.invoke(args=["retention", "run", "--as-of", "2028-06-01"])
    assert out.exit_code == 0, out.output
    assert "1 cases de-identified" in out.output and "1 removed from devices" in out.output
    with app.app_context():
        assert db.session.execute(select(Child.given_name).where(Child.deidentified_at.is_not(None))).scalar() is None
    again = runner.invoke(args=["retention", "run", "--as-of", "2028-06-01"])
    assert "0 cases de-identified" in again.output


def test_the_scheduler_runs_retention_daily(app):
    from server import scheduler

    job = {job.id: job for job in scheduler.JOBS}["retention"]
    assert job.every_seconds(app.config) == 86400
    with app.app_context():
        programme()
    app.config["RETENTION_DAYS"] = 30  # the closures of 2025 are long past by now
    scheduler.run_job(app, job)
    with app.app_context():
        assert db.session.execute(select(Child.id).where(Child.deidentified_at.is_not(None))).scalars().all()


def test_the_web_shows_a_de_identified_case_and_refuses_to_reopen_it(app, client):
    from tests.web_client import post, sign_in, text

    with app.app_context():
        cw, manager, device, old, kept, batch = programme()
        username, child_id = manager.username, old.id
        run(AFTER, DAYS)
    sign_in(client, username)
    page = client.get(f"/children/{child_id}")
    assert page.status_code == 200 and SECRET not in text(page)
    moved = post(client, f"/children/{child_id}/move",
                 {"to_stage": "assessed", "occurred_on": "2026-11-01", "reason": "Fictional return"})
    assert moved.status_code == 422 and "de-identified" in text(moved)


def test_a_push_from_an_offline_phone_after_de_identification_is_erased_from_the_log(ctx):
    cw, manager, device, old, kept, batch = programme()
    old_id = old.id
    run(AFTER, DAYS)
    # The phone, offline since, pushes an edit: refused (out of scope) but logged verbatim first.
    late = MutationLog(mutation_id=uuid.uuid4(), batch_id=batch.batch_id, device_id=device.id, position=1,
                       entity="child", record_id=old_id, op="update", payload={"data": {"given_name": SECRET}},
                       status="rejected", result={"code": "out_of_scope"})
    kept_log = MutationLog(mutation_id=uuid.uuid4(), batch_id=batch.batch_id, device_id=device.id, position=2,
                           entity="child", record_id=kept.id, op="update", payload={"data": {"given_name": "X"}},
                           status="rejected", result={"code": "validation_error"})
    db.session.add_all([late, kept_log])
    db.session.commit()
    result = run(AFTER, DAYS)
    assert result.counts.children == 0 and result.late_mutations == 1
    db.session.refresh(late)
    db.session.refresh(kept_log)
    assert late.payload == {} and late.result is None
    assert kept_log.payload == {"data": {"given_name": "X"}}
    assert run(AFTER, DAYS).late_mutations == 0
