"""The sync endpoint under real concurrency, on PostgreSQL: a commit landing during a pull is not
skipped, and 20 devices pushing overlapping edits at once leave every record consistent."""

import random
import threading
import uuid

import pytest

from models import Actor, Child, Device, RecordHistory, db
from models.records import update_record
from models.syncstate import Conflict, MutationLog
from sync.devices import enroll_device
from tests.sync_server_helpers import Phone, child_fields, mutation, new_id, people_and_phones, user_named

pytestmark = pytest.mark.postgres


def test_a_transaction_committing_during_a_pull_is_not_skipped(app, client):
    cw1 = people_and_phones(app, client, 1)["cw1"]
    ids = [new_id() for _ in range(3)]
    cw1.push_ok(*[mutation("child", i, fields=child_fields()) for i in ids])
    cw1.pull_all()
    flushed, release, done = threading.Event(), threading.Event(), threading.Event()
    late = {}

    def slow_writer():
        # Its own thread: its own app context, session and database connection.
        with app.app_context():
            child = db.session.get(Child, uuid.UUID(ids[0]))
            update_record(child, {"risk_level": "high"}, Actor(user=user_named("mgr"), source="api"))
            late["seq"] = child.seq  # allocated, not committed
            flushed.set()
            release.wait(10)
            db.session.commit()
        done.set()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert flushed.wait(10)
    # Meanwhile a quick writer commits after the slow one took its sequence number: it waits for it.
    quick_done = threading.Event()

    def quick_writer():
        with app.app_context():
            child = db.session.get(Child, uuid.UUID(ids[1]))
            update_record(child, {"district": "Lamwo"}, Actor(user=user_named("mgr"), source="api"))
            db.session.commit()
        quick_done.set()

    quick = threading.Thread(target=quick_writer)
    quick.start()
    assert not quick_done.wait(1.0), "a later writer must not commit a higher sequence number first"
    during = cw1.pull_all()  # answered while the slow transaction is still open
    assert during == []
    release.set()
    writer.join(10)
    quick.join(10)
    assert done.is_set() and quick_done.is_set()
    after = cw1.pull_all()
    by_id = {c["id"]: c for c in after}
    assert by_id[ids[0]]["data"]["risk_level"] == "high" and by_id[ids[0]]["version"] == 2
    assert by_id[ids[1]]["data"]["district"] == "Lamwo"


def test_twenty_devices_pushing_overlapping_updates_stay_consistent(app, client):
    phones = people_and_phones(app, client, 1)
    children = [new_id() for _ in range(6)]
    phones["cw1"].push_ok(*[mutation("child", i, fields=child_fields()) for i in children])
    tokens = []
    with app.app_context():
        cw1 = user_named("cw1")
        for n in range(20):
            tokens.append(enroll_device(cw1, f"Concurrent phone {n}", by=None)[1])
        db.session.commit()
    results, errors = {}, []

    def device_run(n, token):
        rng = random.Random(n)
        phone = Phone(app.test_client(), token)
        seen_version = {c: 1 for c in children}
        try:
            for round_ in range(4):
                muts = []
                for k in range(8):
                    child_id = rng.choice(children)
                    fields = {"current_location": f"Fictional place {n}-{round_}-{k}"}
                    if rng.random() < 0.5:
                        fields["risk_level"] = rng.choice(["high", "medium", "low", "none"])
                    muts.append(mutation("child", child_id, op="update", base_version=seen_version[child_id],
                                         fields=fields))
                batch_id = new_id()
                out = phone.push_ok(*muts, batch_id=batch_id)
                if round_ == 1:
                    assert phone.push_ok(*muts, batch_id=batch_id) == out  # a retried batch
                    replay = phone.push_ok(muts[0])[0]  # a mutation replayed in a new batch
                    assert replay["status"] == "duplicate"
                for m, r in zip(muts, out, strict=True):
                    results[m["mutation_id"]] = (n, m, r)
                    if r["status"] in ("applied", "conflict"):
                        seen_version[m["id"]] = r["version"]
        except Exception as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=device_run, args=(n, t)) for n, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(results) == 20 * 4 * 8
    statuses = {r["status"] for _, _, r in results.values()}
    assert statuses <= {"applied", "duplicate", "conflict", "rejected"}
    assert "applied" in statuses and "conflict" in statuses

    with app.app_context():
        for child_id in children:
            child = db.session.get(Child, uuid.UUID(child_id))
            versions = db.session.execute(
                db.select(RecordHistory.version).where(RecordHistory.record_id == child.id)
                .order_by(RecordHistory.version)).scalars().all()
            assert versions == list(range(1, child.version + 1))  # consecutive, none lost, none doubled
        history = {(row.record_id, row.version): row for row in db.session.execute(db.select(RecordHistory)).scalars()}
        devices = {d.label: d.id for d in db.session.execute(db.select(Device)).scalars()}
        for n, m, r in results.values():
            if r["status"] == "applied":
                row = history[(uuid.UUID(m["id"]), r["version"])]
                assert row.device_id == devices[f"Concurrent phone {n}"]
                assert row.values.get("current_location") == m["fields"]["current_location"]
            elif r["status"] == "conflict":
                conflict = db.session.get(Conflict, uuid.UUID(r["conflict_id"]))
                assert conflict.device_values == {k: m["fields"][k] for k in r["conflicting_fields"]}
        logged = db.session.execute(
            db.select(MutationLog.mutation_id, MutationLog.status).where(MutationLog.op == "update")).all()
        assert len(logged) == len({mid for mid, _ in logged}) == len(results)
        assert {str(mid): status for mid, status in logged} == {k: r["status"] for k, (_, _, r) in results.items()}


def test_a_child_handed_on_between_the_window_and_the_reads_is_not_sent(app, client, monkeypatch):
    """PostgreSQL reads each statement of a page at its own moment: a child handed to another
    caseworker after the page's window was found keeps the seqs of its records, so the reads by seq
    still find them; the scope checked again in those reads leaves them out (the device gets the child
    and its records no more, and nothing of another caseworker's child)."""
    from sync import pull as pull_module

    phones = people_and_phones(app, client, 2)
    cw1 = phones["cw1"]
    kept, handed_on = new_id(), new_id()
    for child_id in (kept, handed_on):
        cw1.push_ok(mutation("child", child_id, fields=child_fields()),
                    mutation("followup", new_id(), fields={"child_id": child_id, "kind": "visit",
                                                          "due_on": "2026-12-01"}))
    real_execute, moved = pull_module._execute, threading.Event()

    def execute_then_hand_on(stmt, params=None):
        result = real_execute(stmt, params)
        if not moved.is_set():  # the first statement is the window
            moved.set()

            def hand_on():
                with app.app_context():
                    update_record(db.session.get(Child, uuid.UUID(handed_on)), {"caseworker": "cw2"},
                                  Actor(user=user_named("mgr"), source="api"))
                    db.session.commit()

            mover = threading.Thread(target=hand_on)  # its own session and connection
            mover.start()
            mover.join(10)
        return result

    monkeypatch.setattr(pull_module, "_execute", execute_then_hand_on)
    changes = cw1.pull_all()
    assert moved.is_set()
    children_sent = {c["id"] if c["entity"] == "child" else c["data"]["child_id"] for c in changes
                     if c["op"] == "upsert"}
    assert children_sent == {kept}
