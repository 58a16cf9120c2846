"""Push (DESIGN §5): idempotency, per-mutation outcomes, domain rules, field-level merge, conflicts."""

import uuid
from datetime import date

from models import Actor, Alert, Assessment, AuditEvent, Child, Followup, RecordHistory, db
from models.records import create_record, delete_record, update_record
from models.syncstate import Conflict, MutationLog, SyncBatch
from sync.devices import enroll_device
from tests.factories import token_for
from tests.sync_server_helpers import (
    Phone,
    child_fields,
    envelope,
    get,
    mutation,
    new_id,
    people_and_phones,
    user_named,
)


def register(phone, **fields):
    child_id = new_id()
    (result,) = phone.push_ok(mutation("child", child_id, fields=child_fields(**fields)))
    assert result["status"] == "applied", result
    return child_id


def second_phone(app, client, username):
    """Another device of the same caseworker (a phone and a tablet sharing a caseload)."""
    with app.app_context():
        _device, token = enroll_device(user_named(username), "Tablet", by=None)
        db.session.commit()
    return Phone(client, token)


def count(model, *where):
    return db.session.execute(db.select(db.func.count()).select_from(model).where(*where)).scalar_one()


def test_a_batch_retried_after_commit_gets_the_same_results_and_changes_nothing(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    body = envelope(
        mutation("child", child_id, fields=child_fields()),
        mutation("assessment", new_id(), fields={"child_id": child_id, "kind": "health",
                                                 "assessed_on": "2026-11-01"}),
        mutation("child", new_id(), fields=child_fields(sex="robot")),
    )
    first = cw1.push(body=body)
    assert first.status_code == 200
    again = cw1.push(body=body)
    assert again.status_code == 200
    assert again.get_json()["results"] == first.get_json()["results"]
    assert [r["status"] for r in first.get_json()["results"]] == ["applied", "applied", "rejected"]
    with app.app_context():
        assert count(Child) == 1 and count(Assessment) == 1
        assert count(MutationLog) == 3 and count(SyncBatch) == 1
        assert count(RecordHistory, RecordHistory.record_id == get(Child, child_id).id) == 1
        batch = db.session.execute(db.select(SyncBatch)).scalar_one()
        assert (batch.applied, batch.rejected, batch.mutations) == (2, 1, 3)
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "sync.push")).scalar_one()
        assert event.details["applied"] == 2 and event.details["rejected"] == 1
        assert "Fictional" not in str(event.details)  # counts, never contents


def test_a_mutation_replayed_in_another_batch_is_a_duplicate(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    create = mutation("child", child_id, fields=child_fields())
    assert cw1.push_ok(create)[0]["status"] == "applied"
    edit = mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "high"})
    results = cw1.push_ok(create, edit)
    assert results[0] == {"mutation_id": create["mutation_id"], "status": "duplicate", "version": 1,
                          "original_status": "applied"}
    assert results[1]["status"] == "applied" and results[1]["version"] == 2
    # The same mutation twice in one batch: the second is a duplicate too.
    again = mutation("child", child_id, op="update", base_version=2, fields={"district": "Gulu"})
    twice = cw1.push_ok(again, again)
    assert [r["status"] for r in twice] == ["applied", "duplicate"]
    with app.app_context():
        assert count(Child) == 1
        assert get(Child, child_id).version == 3
        assert count(MutationLog) == 3


def test_every_mutation_is_logged_verbatim_including_rejected_ones(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    bad = mutation("child", new_id(), fields=child_fields(sex="robot", family_name="Demo-Lanek"))
    (result,) = cw1.push_ok(bad)
    assert result["status"] == "rejected" and result["code"] == "validation_error"
    assert result["errors"] == {"sex": ["Must be one of: female, male, other, unknown."]}
    with app.app_context():
        row = db.session.execute(db.select(MutationLog)).scalar_one()
        assert row.payload == bad and row.status == "rejected"
        assert row.result["code"] == "validation_error"
        raw = db.session.execute(db.text("SELECT payload FROM mutation_log")).scalar_one()
        assert "Demo-Lanek" not in raw  # encrypted at rest


def test_two_devices_editing_different_fields_from_the_same_base_both_apply(app, client):
    phones = people_and_phones(app, client)
    cw1 = phones["cw1"]
    child_id = register(cw1)
    # A second phone of the same caseworker.
    tablet = second_phone(app, client, "cw1")
    a = cw1.push_ok(mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "high"}))
    b = tablet.push_ok(mutation("child", child_id, op="update", base_version=1, fields={"district": "Pader"}))
    assert a[0]["status"] == "applied" and b[0]["status"] == "applied"
    assert b[0]["version"] == 3
    with app.app_context():
        child = get(Child, child_id)
        assert (child.risk_level, child.district, child.needs_review) == ("high", "Pader", False)
        assert count(Conflict) == 0


def test_same_field_to_different_values_is_a_conflict_kept_and_resolved_back_to_devices(app, client):
    phones = people_and_phones(app, client)
    cw1 = phones["cw1"]
    child_id = register(cw1, risk_level="low")
    tablet = second_phone(app, client, "cw1")
    cw1.pull_all()
    tablet.pull_all()
    first = cw1.push_ok(mutation("child", child_id, op="update", base_version=1,
                                 fields={"risk_level": "high", "district": "Gulu"}))
    assert first[0]["status"] == "applied"
    second = tablet.push_ok(mutation("child", child_id, op="update", base_version=1,
                                     fields={"risk_level": "medium", "current_location": "Fictional camp"}))
    result = second[0]
    assert result["status"] == "conflict" and result["conflicting_fields"] == ["risk_level"]
    with app.app_context():
        child = get(Child, child_id)
        # The server's value stays; the untouched field applied; the child waits for review.
        assert child.risk_level == "high" and child.current_location == "Fictional camp"
        assert child.needs_review is True and child.version == result["version"]
        conflict = get(Conflict, result["conflict_id"])
        assert conflict.base_values == {"risk_level": "low"}
        assert conflict.server_values == {"risk_level": "high"}
        assert conflict.device_values == {"risk_level": "medium"}
        manager_headers = token_for(client, user_named("mgr"))

    listed = client.get(f"/api/v1/conflicts?child_id={child_id}", headers=manager_headers).get_json()
    assert [c["id"] for c in listed["items"]] == [result["conflict_id"]]
    shown = client.get(f"/api/v1/conflicts/{result['conflict_id']}", headers=manager_headers).get_json()
    assert shown["values"]["risk_level"] == {"base": "low", "server": "high", "device": "medium"}

    bad = client.post(f"/api/v1/conflicts/{result['conflict_id']}/resolve",
                      json={"fields": {"risk_level": {"value": "extreme"}}}, headers=manager_headers)
    assert bad.status_code == 422 and "risk_level" in bad.get_json()["error"]["details"]["fields"]
    resolved = client.post(f"/api/v1/conflicts/{result['conflict_id']}/resolve",
                           json={"fields": {"risk_level": "device"}}, headers=manager_headers)
    assert resolved.status_code == 200, resolved.get_json()
    assert resolved.get_json()["status"] == "resolved"
    again = client.post(f"/api/v1/conflicts/{result['conflict_id']}/resolve",
                        json={"fields": {"risk_level": "server"}}, headers=manager_headers)
    assert again.status_code == 409

    # The resolution is a new version: both devices receive it on their next pull.
    for phone in (cw1, tablet):
        changes = [c for c in phone.pull_all() if c["entity"] == "child"]
        assert changes[-1]["data"]["risk_level"] == "medium"
        assert changes[-1]["data"]["needs_review"] is False
    with app.app_context():
        assert get(Child, child_id).needs_review is False
        assert count(Conflict, Conflict.status == "open") == 0


def test_caseworker_of_the_child_may_resolve_others_may_not(app, client):
    phones = people_and_phones(app, client)
    child_id = register(phones["cw1"], risk_level="low")
    with app.app_context():
        child = get(Child, child_id)
        update_record(child, {"risk_level": "high"}, Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    (result,) = phones["cw1"].push_ok(mutation("child", child_id, op="update", base_version=1,
                                               fields={"risk_level": "none"}))
    assert result["status"] == "conflict"
    with app.app_context():
        cw2 = token_for(client, user_named("cw2"))
        cw1 = token_for(client, user_named("cw1"))
    url = f"/api/v1/conflicts/{result['conflict_id']}"
    assert client.get(url, headers=cw2).status_code == 404
    assert client.post(url + "/resolve", json={"fields": {"risk_level": "server"}}, headers=cw2).status_code == 404
    missing = client.post(url + "/resolve", json={"fields": {}}, headers=cw1)
    assert missing.status_code == 422
    done = client.post(url + "/resolve", json={"fields": {"risk_level": {"value": "medium"}}}, headers=cw1)
    assert done.status_code == 200
    with app.app_context():
        child = get(Child, child_id)
        assert child.risk_level == "medium" and child.needs_review is False


def test_a_conflict_on_a_record_flags_its_child(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = register(cw1)
    assessment_id = new_id()
    cw1.push_ok(mutation("assessment", assessment_id, fields={"child_id": child_id, "kind": "health",
                                                             "assessed_on": "2026-11-01", "notes": "v1"}))
    cw1.push_ok(mutation("assessment", assessment_id, op="update", base_version=1, fields={"notes": "v2"}))
    (result,) = cw1.push_ok(mutation("assessment", assessment_id, op="update", base_version=1,
                                     fields={"notes": "other", "risk_level": "low"}))
    assert result["status"] == "conflict" and result["conflicting_fields"] == ["notes"]
    with app.app_context():
        assessment = get(Assessment, assessment_id)
        assert assessment.notes == "v2" and assessment.risk_level == "low" and assessment.version == 3
        assert get(Child, child_id).needs_review is True


def test_create_for_an_existing_id(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    cw1.push_ok(mutation("child", child_id, fields=child_fields()))
    same = cw1.push_ok(mutation("child", child_id, fields=child_fields()))[0]
    assert same["status"] == "duplicate" and same["version"] == 1
    other = cw1.push_ok(mutation("child", child_id, fields=child_fields(family_name="Demo-Otto")))[0]
    assert other["status"] == "rejected" and other["code"] == "id_conflict"
    with app.app_context():
        assert get(Child, child_id).family_name == "Demo-Abalo"


def test_update_after_the_record_was_deleted(app, client):
    phones = people_and_phones(app, client)
    cw1 = phones["cw1"]
    child_id = register(cw1)
    followup_id = new_id()
    cw1.push_ok(mutation("followup", followup_id, fields={"child_id": child_id, "kind": "visit",
                                                         "due_on": "2026-12-01"}))
    with app.app_context():
        delete_record(get(Followup, followup_id), Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    (result,) = cw1.push_ok(mutation("followup", followup_id, op="update", base_version=1,
                                     fields={"due_on": "2026-12-05"}))
    assert result["status"] == "rejected" and result["code"] == "record_deleted"
    assert "deleted" in result["message"]
    # Another caseworker's device learns nothing: not in your caseload reads the same as no such record.
    (theirs,) = phones["cw2"].push_ok(mutation("followup", followup_id, op="update", base_version=1,
                                               fields={"due_on": "2026-12-05"}))
    (nobodys,) = phones["cw2"].push_ok(mutation("followup", new_id(), op="update", base_version=1,
                                                fields={"due_on": "2026-12-05"}))
    assert theirs["code"] == nobodys["code"] == "out_of_scope" and theirs["message"] == nobodys["message"]


def test_records_of_a_rejected_child_are_parent_rejected_and_the_rest_applies(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    bad_child, good_child = new_id(), new_id()
    results = cw1.push_ok(
        mutation("child", bad_child, fields=child_fields(sex=None)),
        mutation("consent", new_id(), fields={"child_id": bad_child, "purpose": "services",
                                              "given_by": "child", "given_on": "2026-11-01"}),
        mutation("child", good_child, fields=child_fields()),
        mutation("consent", new_id(), fields={"child_id": good_child, "purpose": "services",
                                              "given_by": "child", "given_on": "2026-11-01"}),
    )
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied", "applied"]
    assert results[0]["code"] == "validation_error" and "sex" in results[0]["errors"]
    assert results[1]["code"] == "parent_rejected"


def test_an_invalid_stage_transition_from_a_device_is_rejected(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = register(cw1)
    results = cw1.push_ok(
        mutation("stage_transition", new_id(), fields={"child_id": child_id, "to_stage": "reunified",
                                                       "occurred_on": "2026-11-02"}),
        mutation("stage_transition", new_id(), fields={"child_id": child_id, "to_stage": "registered",
                                                       "occurred_on": "2026-11-02"}),
    )
    assert results[0]["status"] == "rejected" and results[0]["code"] == "invalid_transition"
    assert "Allowed: reception, registered, missing" in results[0]["message"]
    assert results[1]["status"] == "applied"
    with app.app_context():
        child = get(Child, child_id)
        assert child.stage == "registered" and child.stage_since == date(2026, 11, 2)


def test_a_device_cannot_write_outside_its_caseload(app, client):
    phones = people_and_phones(app, client)
    child_id = register(phones["cw1"])
    results = phones["cw2"].push_ok(
        mutation("child", child_id, op="update", base_version=1, fields={"risk_level": "high"}),
        mutation("assessment", new_id(), fields={"child_id": child_id, "kind": "health",
                                                 "assessed_on": "2026-11-01"}),
        mutation("child", new_id(), fields=child_fields(caseworker="cw1")),
        mutation("child", child_id, fields=child_fields()),  # a "create" of someone else's child
    )
    assert [r["code"] for r in results] == ["out_of_scope"] * 4
    with app.app_context():
        assert get(Child, child_id).risk_level is None


def test_alerts_can_only_be_acknowledged_by_their_recipient(app, client):
    phones = people_and_phones(app, client)
    child_id = register(phones["cw1"])
    with app.app_context():
        alert = create_record("alert", {"key": f"{child_id}:test:2026-11-27", "rule": "test", "severity": "urgent",
                                        "child_id": get(Child, child_id).id, "recipient_id": user_named("cw1").id,
                                        "due_on": date(2026, 11, 27)}, Actor(user=None, source="system"))
        db.session.commit()
        alert_id = str(alert.id)
    ack = mutation("alert", alert_id, op="update", base_version=1, fields={"status": "acknowledged"})
    assert phones["cw2"].push_ok(ack)[0]["code"] == "out_of_scope"
    results = phones["cw1"].push_ok(
        mutation("alert", alert_id, op="update", base_version=1, fields={"status": "resolved"}),
        mutation("alert", new_id(), fields={"status": "acknowledged"}),
        mutation("alert", alert_id, op="update", base_version=1, fields={"status": "acknowledged"}),
    )
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied"]
    assert results[2]["version"] == 2
    with app.app_context():
        assert get(Alert, alert_id).status == "acknowledged"


def test_a_domain_refusal_mid_batch_leaves_the_others_applied_exactly_once(app, client):
    """The fast path gives way to one savepoint per mutation; nothing of the first attempt remains."""
    cw1 = people_and_phones(app, client)["cw1"]
    a, b, consent_id = new_id(), new_id(), new_id()
    results = cw1.push_ok(
        mutation("child", a, fields=child_fields()),
        mutation("stage_transition", new_id(), fields={"child_id": a, "to_stage": "closed",
                                                       "occurred_on": "2026-11-02"}),
        mutation("consent", consent_id, fields={"child_id": a, "purpose": "tracing", "given_by": "caregiver",
                                                "given_on": "2026-11-01"}),
        mutation("child", b, fields=child_fields(sex="male")),
        mutation("child", a, op="update", base_version=1, fields={"risk_level": "medium"}),
    )
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "applied", "applied"]
    assert results[1]["code"] == "invalid_transition"
    with app.app_context():
        assert count(Child) == 2 and count(RecordHistory, RecordHistory.record_id == get(Child, a).id) == 2
        assert get(Child, a).risk_level == "medium" and get(Child, a).version == 2
        assert count(RecordHistory, RecordHistory.record_id == uuid.UUID(consent_id)) == 1
        assert count(MutationLog) == 5


def test_database_unreachable_answers_503_with_retry_after(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import server.sync_endpoint

    cw1 = people_and_phones(app, client)["cw1"]

    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(server.sync_endpoint, "ingest", unreachable)
    response = cw1.push(mutation("child", new_id(), fields=child_fields()))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "unavailable"


def test_a_planning_failure_after_commit_does_not_fail_the_batch(app, client, monkeypatch):
    import models.unit_of_work

    cw1 = people_and_phones(app, client)["cw1"]

    def broken(*args, **kwargs):
        raise RuntimeError("planning bug")

    monkeypatch.setattr(models.unit_of_work, "after_changes", broken)
    child_id = new_id()
    (result,) = cw1.push_ok(mutation("child", child_id, fields=child_fields()))
    assert result["status"] == "applied"
    with app.app_context():
        assert get(Child, child_id) is not None


def test_a_device_cannot_test_guesses_at_the_restricted_profile(app, client):
    # Caseworkers write the armed-group profile but never read it back. Neither a create for an existing
    # id ("duplicate" or "id_conflict") nor an update from an old base ("applied" or "conflict") may
    # answer differently for the stored value and any other.
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = register(cw1)
    with app.app_context():
        manager = Actor(user=user_named("mgr"), source="api")
        update_record(get(Child, child_id), {"how_left": "escaped", "date_joined": date(2019, 3, 14)}, manager)
        db.session.commit()
    creates = [mutation("child", child_id, fields={**child_fields(), "how_left": guess}) for guess in ("captured", "escaped")]
    assert [r["status"] for r in cw1.push_ok(*creates)] == ["duplicate", "duplicate"]
    updates = [mutation("child", child_id, op="update", base_version=1, fields={"date_joined": guess})
               for guess in ("2019-03-13", "2019-03-14")]
    results = cw1.push_ok(*updates)
    assert [(r["status"], r["conflicting_fields"]) for r in results] == [("conflict", ["date_joined"])] * 2
    with app.app_context():
        child = get(Child, child_id)
        assert (child.how_left, child.date_joined) == ("escaped", date(2019, 3, 14))
        manager_headers = token_for(client, user_named("mgr"))
        caseworker_headers = token_for(client, user_named("cw1"))

    # The caseworker sees that there is a conflict, not its values; a manager sees them, and that read
    # is audited like a read of the child's restricted profile.
    def restricted_reads():
        with app.app_context():
            return count(AuditEvent, AuditEvent.action == "child.restricted_read")

    url = f"/api/v1/conflicts/{results[0]['conflict_id']}"
    assert client.get(url, headers=caseworker_headers).get_json()["values"] == {"date_joined": {"restricted": True}}
    assert restricted_reads() == 0
    shown = client.get(url, headers=manager_headers).get_json()["values"]["date_joined"]
    assert shown == {"base": None, "server": "2019-03-14", "device": "2019-03-13"}
    assert restricted_reads() == 1
