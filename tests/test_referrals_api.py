"""Agencies and referrals through the JSON API: every step of a referral, valid and refused, the
consent gate, a manager's override and its audit, and who may do what."""

import pytest

from models import Actor, AuditEvent, User, db, utcnow
from models.records import create_record
from tests.factories import make_child, make_user, token_for


@pytest.fixture
def world(app):
    with app.app_context():
        cw, other = make_user("caseworker", username="cw.r"), make_user("caseworker", username="cw.x")
        make_user("manager", username="boss.r")
        consented, bare = make_child(cw), make_child(cw)
        create_record("consent", {"child_id": consented.id, "purpose": "referral", "given_by": "caregiver",
                                  "given_on": utcnow().date()}, Actor(user=cw, source="api"))
        db.session.commit()
        return {"consented": str(consented.id), "bare": str(bare.id), "other": other.username}


@pytest.fixture
def auth(client, app):
    def headers(username):
        with app.app_context():
            return token_for(client, db.session.execute(db.select(User).where(User.username == username)).scalar_one())
    return headers


@pytest.fixture
def centre(client, auth, world):
    response = client.post("/api/v1/agencies", headers=auth("boss.r"), json={
        "name": "Gulu Vocational Centre", "kind": "vocational_centre", "district": "Gulu", "contact": "Office"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def refer(client, headers, child, **fields):
    return client.post(f"/api/v1/children/{child}/referrals", headers=headers,
                       json={"service_type": "vocational_training", "reason": "Wants carpentry", **fields})


def step(client, headers, referral, status):
    return client.post(f"/api/v1/referrals/{referral}/steps", headers=headers, json={"status": status})


def test_agencies_are_created_by_managers_and_listed_for_caseworkers(client, auth, centre):
    assert client.post("/api/v1/agencies", headers=auth("cw.r"), json={"name": "X", "kind": "ngo"}).status_code == 403
    duplicate = client.post("/api/v1/agencies", headers=auth("boss.r"),
                            json={"name": "Gulu Vocational Centre", "kind": "ngo"})
    assert duplicate.status_code == 422 and "name" in duplicate.get_json()["error"]["details"]["fields"]
    bad_kind = client.post("/api/v1/agencies", headers=auth("boss.r"), json={"name": "Y", "kind": "church"})
    assert bad_kind.status_code == 422
    listed = client.get("/api/v1/agencies", headers=auth("cw.r")).get_json()["items"]
    assert [a["name"] for a in listed] == ["Gulu Vocational Centre"]
    patched = client.patch(f"/api/v1/agencies/{centre}", headers=auth("boss.r"), json={"district": "Kitgum"})
    assert patched.status_code == 200 and patched.get_json()["district"] == "Kitgum"


def test_a_referral_goes_proposed_sent_accepted_completed_with_each_step_dated_and_signed(
        client, auth, world, centre, app):
    cw = auth("cw.r")
    created = refer(client, cw, world["consented"], agency_id=centre)
    assert created.status_code == 201, created.get_json()
    referral = created.get_json()
    assert referral["status"] == "proposed" and referral["allowed_next"] == ["sent"]
    assert referral["agency"] == "Gulu Vocational Centre" and not referral["consent_overridden"]
    for status in ("sent", "accepted", "completed"):
        response = step(client, cw, referral["id"], status)
        assert response.status_code == 200, response.get_json()
    done = response.get_json()
    assert [s["status"] for s in done["steps"]] == ["proposed", "sent", "accepted", "completed"]
    assert all(s["actor_id"] and s["occurred_on"] == utcnow().date().isoformat() for s in done["steps"])
    assert done["sent_on"] == utcnow().date().isoformat() and done["allowed_next"] == []
    with app.app_context():
        actions = db.session.execute(db.select(AuditEvent.action).where(AuditEvent.target == referral["id"])).scalars()
        assert sorted(actions) == ["referral.create", "referral.step", "referral.step", "referral.step"]


@pytest.mark.parametrize("path, refused", [
    ([], "accepted"), ([], "completed"), (["sent"], "completed"), (["sent"], "proposed"),
    (["sent", "declined"], "accepted"), (["sent", "accepted", "closed_without_service"], "completed"),
])
def test_a_step_the_status_does_not_allow_is_refused_naming_the_allowed_ones(
        client, auth, world, centre, path, refused):
    cw = auth("cw.r")
    referral = refer(client, cw, world["consented"], agency_id=centre).get_json()["id"]
    for status in path:
        assert step(client, cw, referral, status).status_code == 200
    response = step(client, cw, referral, refused)
    error = response.get_json()["error"]
    assert response.status_code == 422 and error["code"] == "invalid_transition"
    assert "Allowed:" in error["message"] and isinstance(error["details"]["allowed"], list)


def test_a_referral_needs_a_receiver_and_a_known_service_type(client, auth, world, centre):
    cw = auth("cw.r")
    neither = refer(client, cw, world["consented"])
    assert neither.status_code == 422 and "agency_id" in neither.get_json()["error"]["details"]["fields"]
    both = refer(client, cw, world["consented"], agency_id=centre, provider_name="Mama Grace tailoring")
    assert both.status_code == 422
    assert refer(client, cw, world["consented"], service_type="magic", provider_name="P").status_code == 422
    outside = refer(client, cw, world["consented"], provider_name="Mama Grace tailoring")
    assert outside.status_code == 201 and outside.get_json()["provider_name"] == "Mama Grace tailoring"


def test_without_referral_consent_the_referral_is_refused(client, auth, world, centre, app):
    response = refer(client, auth("cw.r"), world["bare"], agency_id=centre)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "consent_required"
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(db.table("referral"))).scalar() == 0


def test_only_a_manager_may_override_and_the_override_is_audited_without_its_reason(client, auth, world, centre, app):
    by_caseworker = refer(client, auth("cw.r"), world["bare"], agency_id=centre, override_reason="Urgent")
    assert by_caseworker.status_code == 403 and by_caseworker.get_json()["error"]["code"] == "manager_only"
    by_manager = refer(client, auth("boss.r"), world["bare"], agency_id=centre,
                       override_reason="Medical emergency, caregiver unreachable")
    assert by_manager.status_code == 201, by_manager.get_json()
    body = by_manager.get_json()
    assert body["consent_overridden"] and body["override_reason"] == "Medical emergency, caregiver unreachable"
    assert step(client, auth("boss.r"), body["id"], "sent").status_code == 200
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "consent.override")).scalar_one()
        assert str(event.child_id) == world["bare"] and "Medical" not in str(event.details)
        stored = db.session.execute(db.text("SELECT override_reason FROM referral")).scalar_one()
        assert "Medical" not in stored  # encrypted at rest


def test_a_withdrawn_consent_stops_new_referrals_and_sending_proposed_ones(client, auth, world, centre, app):
    cw = auth("cw.r")
    proposed = refer(client, cw, world["consented"], agency_id=centre).get_json()["id"]
    consent = client.get(f"/api/v1/children/{world['consented']}/consents", headers=cw).get_json()["items"][0]
    withdrawn = client.patch(f"/api/v1/consents/{consent['id']}", headers={**cw, "If-Match": str(consent["version"])},
                             json={"withdrawn_on": utcnow().date().isoformat()})
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert refer(client, cw, world["consented"], agency_id=centre).get_json()["error"]["code"] == "consent_required"
    assert step(client, cw, proposed, "sent").get_json()["error"]["code"] == "consent_required"


def test_referrals_of_a_child_are_hidden_from_other_caseworkers_and_reads_are_audited(
        client, auth, world, centre, app):
    referral = refer(client, auth("cw.r"), world["consented"], agency_id=centre).get_json()["id"]
    other = auth(world["other"])
    assert client.get(f"/api/v1/children/{world['consented']}/referrals", headers=other).status_code == 404
    assert client.get(f"/api/v1/referrals/{referral}", headers=other).status_code == 404
    assert step(client, other, referral, "sent").status_code == 404
    assert client.get("/api/v1/referrals", headers=other).get_json()["items"] == []
    boss = auth("boss.r")
    assert [r["id"] for r in client.get("/api/v1/referrals?status=open", headers=boss).get_json()["items"]] == [referral]
    assert client.get(f"/api/v1/children/{world['consented']}/referrals", headers=boss).status_code == 200
    with app.app_context():
        reads = db.session.execute(db.select(db.func.count()).where(AuditEvent.action == "referral.read")).scalar()
        assert reads >= 2


def test_the_override_reason_is_shown_to_managers_only(client, auth, world, centre):
    referral = refer(client, auth("boss.r"), world["bare"], agency_id=centre, override_reason="Caregiver away").get_json()
    mine = client.get(f"/api/v1/referrals/{referral['id']}", headers=auth("cw.r")).get_json()
    assert mine["consent_overridden"] and mine["override_reason"] is None
