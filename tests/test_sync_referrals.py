"""Referrals by sync (issue 13): proposed offline, stepped through their lifecycle, the consent gate on
push, scope, duplicates, and what a device pulls of them. Every name is fictional."""

from datetime import date

from models import Actor, Child, db
from models.records import update_record
from models.referrals import Referral, ReferralStep, advance_referral
from models.syncstate import MutationLog
from tests.sync_server_helpers import child_fields, get, mutation, new_id, people_and_phones, user_named


def referral_fields(child_id, **kw):
    return {"child_id": child_id, "service_type": "vocational_training", "provider_name": "Fictional Workshop",
            "reason": "Fictional: wants to learn tailoring", **kw}


def consent(child_id, **kw):
    return mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "referral", "given_by": "child",
                                                 "given_on": "2026-10-02", **kw})


def child_with_consent(phone):
    child_id = new_id()
    results = phone.push_ok(mutation("child", child_id, fields=child_fields()), consent(child_id))
    assert [r["status"] for r in results] == ["applied", "applied"]
    return child_id


def step(referral_id, status, base_version, **kw):
    return mutation("referral", referral_id, op="update", base_version=base_version, fields={"status": status, **kw})


def steps_of(referral_id):
    return [s.status for s in db.session.execute(db.select(ReferralStep).where(
        ReferralStep.referral_id == get(Referral, referral_id).id).order_by(ReferralStep.at)).scalars()]


def test_a_referral_proposed_offline_with_its_consent_in_the_same_batch_is_applied_and_pulled(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id, referral_id = new_id(), new_id()
    results = cw1.push_ok(mutation("child", child_id, fields=child_fields()), consent(child_id),
                          mutation("referral", referral_id, fields=referral_fields(child_id)))
    assert [r["status"] for r in results] == ["applied"] * 3 and results[2]["version"] == 1
    with app.app_context():
        referral = get(Referral, referral_id)
        assert (referral.status, referral.created_by_id) == ("proposed", user_named("cw1").id)
        assert referral.provider_name == "Fictional Workshop" and steps_of(referral_id) == ["proposed"]
        raw = db.session.execute(db.text("SELECT reason FROM referral")).scalar_one()
        assert "tailoring" not in raw  # personal: sealed at rest
    pulled = [c for c in cw1.pull_all() if c["entity"] == "referral"]
    assert len(pulled) == 1 and pulled[0]["op"] == "upsert"
    data = pulled[0]["data"]
    assert data["status"] == "proposed" and data["reason"] == "Fictional: wants to learn tailoring"
    assert "override_reason" not in data  # a manager's reason never goes to devices


def test_without_the_referral_consent_the_push_is_refused_and_nothing_is_written(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    withdrawn = consent(child_id, withdrawn_on="2026-10-20")
    services = mutation("consent", new_id(), fields={"child_id": child_id, "purpose": "services",
                                                     "given_by": "child", "given_on": "2026-10-02"})
    referral_id = new_id()
    results = cw1.push_ok(mutation("child", child_id, fields=child_fields()), withdrawn, services,
                          mutation("referral", referral_id, fields=referral_fields(child_id)))
    assert results[3]["status"] == "rejected" and results[3]["code"] == "consent_required"
    assert "referral" in results[3]["message"]
    with app.app_context():
        assert get(Referral, referral_id) is None
        log = db.session.execute(db.select(MutationLog).where(MutationLog.entity == "referral")).scalar_one()
        assert log.status == "rejected" and log.payload["fields"]["reason"]  # kept verbatim all the same


def test_a_device_cannot_override_a_missing_consent(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    cw1.push_ok(mutation("child", child_id, fields=child_fields()))
    (result,) = cw1.push_ok(mutation("referral", new_id(), fields=referral_fields(
        child_id, override_reason="Fictional: urgent")))
    # A device has no override field: only a manager overrides, on the web.
    assert result["status"] == "rejected" and result["code"] == "validation_error"
    assert "_unknown" in result["errors"]


def test_the_lifecycle_steps_a_device_records_and_an_invalid_one(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = child_with_consent(cw1)
    rid = new_id()
    cw1.push_ok(mutation("referral", rid, fields=referral_fields(child_id)))
    (invalid,) = cw1.push_ok(step(rid, "completed", 1))
    assert invalid["status"] == "rejected" and invalid["code"] == "invalid_transition"
    assert "Allowed: sent" in invalid["message"]
    results = cw1.push_ok(step(rid, "sent", 1, occurred_on="2026-11-22"), step(rid, "accepted", 2),
                          step(rid, "completed", 3))
    assert [(r["status"], r["version"]) for r in results] == [("applied", 2), ("applied", 3), ("applied", 4)]
    with app.app_context():
        referral = get(Referral, rid)
        assert (referral.status, referral.sent_on) == ("completed", date(2026, 11, 22))
        assert steps_of(rid) == ["proposed", "sent", "accepted", "completed"]
        # A step's day: the one the device named, else the device's own day when it recorded it.
        days = db.session.execute(db.select(ReferralStep.status, ReferralStep.occurred_on).where(
            ReferralStep.referral_id == referral.id)).all()
        assert dict(days) == {"proposed": date(2026, 11, 20), "sent": date(2026, 11, 22),
                              "accepted": date(2026, 11, 20), "completed": date(2026, 11, 20)}
    (finished,) = cw1.push_ok(step(rid, "closed_without_service", 4))
    assert finished["code"] == "invalid_transition" and "finished" in finished["message"]
    (unknown,) = cw1.push_ok(step(rid, "lost", 4))
    assert unknown["code"] == "validation_error" and "status" in unknown["errors"]


def test_a_stale_step_is_checked_against_the_current_status(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = child_with_consent(cw1)
    rid = new_id()
    cw1.push_ok(mutation("referral", rid, fields=referral_fields(child_id)))
    with app.app_context():
        advance_referral(get(Referral, rid), "sent", user_named("mgr"), today=date(2026, 11, 3))
        db.session.commit()
        assert get(Referral, rid).version == 2  # the web steps the version too
    # The device saw version 1 and records "sent" too: the referral already took that step.
    (same,) = cw1.push_ok(step(rid, "sent", 1))
    assert same == {"mutation_id": same["mutation_id"], "status": "applied", "version": 2}
    (later,) = cw1.push_ok(step(rid, "declined", 1))  # stale, but allowed from "sent"
    assert (later["status"], later["version"]) == ("applied", 3)
    (ahead,) = cw1.push_ok(step(rid, "declined", 9))
    assert ahead["code"] == "validation_error" and "base_version" in ahead["errors"]


def test_sending_rechecks_the_consent(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id, consent_id, rid = new_id(), new_id(), new_id()
    cw1.push_ok(mutation("child", child_id, fields=child_fields()),
                mutation("consent", consent_id, fields={"child_id": child_id, "purpose": "referral",
                                                        "given_by": "child", "given_on": "2026-10-02"}),
                mutation("referral", rid, fields=referral_fields(child_id)))
    results = cw1.push_ok(mutation("consent", consent_id, op="update", base_version=1,
                                   fields={"withdrawn_on": "2026-11-01"}), step(rid, "sent", 1))
    assert results[0]["status"] == "applied"
    assert results[1]["status"] == "rejected" and results[1]["code"] == "consent_required"


def test_scope_duplicates_and_parents(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    child_id = child_with_consent(cw1)
    rid = new_id()
    create = mutation("referral", rid, fields=referral_fields(child_id))
    cw1.push_ok(create)
    assert cw1.push_ok(create)[0]["status"] == "duplicate"
    again = mutation("referral", rid, fields=referral_fields(child_id))  # same content, new mutation id
    assert cw1.push_ok(again)[0] == {"mutation_id": again["mutation_id"], "status": "duplicate", "version": 1}
    (clash,) = cw1.push_ok(mutation("referral", rid, fields=referral_fields(child_id, reason="Other")))
    assert clash["code"] == "id_conflict"
    # Another caseworker's device: not in its caseload, whether it creates, steps or guesses the id.
    for m in (mutation("referral", new_id(), fields=referral_fields(child_id)), step(rid, "sent", 1),
              mutation("referral", rid, fields=referral_fields(child_id))):
        (result,) = cw2.push_ok(m)
        assert result["code"] == "out_of_scope", m
    (both,) = cw1.push_ok(mutation("referral", new_id(), fields=referral_fields(
        child_id, agency_id=new_id())))
    assert both["code"] == "validation_error" and "provider_name" in both["errors"]
    (neither,) = cw1.push_ok(mutation("referral", new_id(), fields=referral_fields(child_id, provider_name=None)))
    assert "agency_id" in neither["errors"]
    bad_child = new_id()
    results = cw1.push_ok(mutation("child", bad_child, fields=child_fields(sex="robot")),
                          mutation("referral", new_id(), fields=referral_fields(bad_child)))
    assert [r.get("code") for r in results] == ["validation_error", "parent_rejected"]


def test_a_reassigned_child_takes_its_referrals_to_the_new_caseworkers_device(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    child_id = child_with_consent(cw1)
    rid = new_id()
    cw1.push_ok(mutation("referral", rid, fields=referral_fields(child_id)))
    cw1.pull_all()
    cw2.pull_all()
    with app.app_context():
        update_record(get(Child, child_id), {"caseworker": "cw2"}, Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    gone = {(c["entity"], c["op"]) for c in cw1.pull_all() if c["id"] == rid}
    assert gone == {("referral", "remove")}
    came = [c for c in cw2.pull_all() if c["id"] == rid]
    assert [(c["entity"], c["op"]) for c in came] == [("referral", "upsert")]
    (result,) = cw1.push_ok(step(rid, "sent", 1))
    assert result["code"] == "out_of_scope"
    assert cw2.push_ok(step(rid, "sent", 1))[0]["status"] == "applied"
