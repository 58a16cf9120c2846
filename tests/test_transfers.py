"""Agency-limited reach and inter-agency transfers (issue 13): who sees which child when an agency
limits its staff's reach, every transition of a transfer and who may take it, the consent gate with
its override, and the sending caseworker's device losing the child. Every name here is fictional."""

import uuid

import pytest

from models import Actor, AuditEvent, Child, User, db, utcnow
from models.agencies import Agency, save_agency
from models.consent_gates import ConsentOverride
from models.records import create_record, update_record
from sync.devices import enroll_device
from tests.factories import make_child, make_user, token_for
from tests.sync_server_helpers import Phone, child_fields, mutation, new_id
from tests.web_client import post, sign_in, text


@pytest.fixture
def world(app, client):
    """Agencies North and South, each limiting its staff's reach, and Central, which does not. A
    manager and a caseworker in North and South, a manager of no agency; two children of North (one
    with a referral consent) registered by North's caseworker, one of South."""
    with app.app_context():
        north = save_agency({"name": "North NGO", "kind": "ngo", "limits_reach": True})
        south = save_agency({"name": "South Probation", "kind": "probation_social_welfare", "limits_reach": True})
        central = save_agency({"name": "Central Partner", "kind": "unicef_partner"})
        users = {
            "mgr.n": make_user("manager", username="mgr.n", agency_id=north.id),
            "cw.n": make_user("caseworker", username="cw.n", agency_id=north.id),
            "mgr.s": make_user("manager", username="mgr.s", agency_id=south.id),
            "cw.s": make_user("caseworker", username="cw.s", agency_id=south.id),
            "mgr.c": make_user("manager", username="mgr.c", agency_id=central.id),
            "boss": make_user("manager", username="boss"),
        }
        consented = make_child(users["cw.n"], given_name="Adoch")
        bare = make_child(users["cw.n"], given_name="Okello")
        southern = make_child(users["cw.s"], given_name="Lanyero")
        create_record("consent", {"child_id": consented.id, "purpose": "referral", "given_by": "caregiver",
                                  "given_on": utcnow().date()}, Actor(user=users["cw.n"], source="api"))
        db.session.commit()
        ids = {"north": str(north.id), "south": str(south.id), "central": str(central.id),
               "consented": str(consented.id), "bare": str(bare.id), "southern": str(southern.id)}
        heads = {name: token_for(client, user) for name, user in users.items()}
    return {**ids, "heads": heads}


def propose(client, world, child="consented", who="mgr.n", to="south", **extra):
    return client.post(f"/api/v1/children/{world[child]}/transfers", headers=world["heads"][who],
                       json={"to_agency_id": world[to], "reason": "The family moved to the south.", **extra})


def decide(client, world, transfer_id, step, who):
    return client.post(f"/api/v1/transfers/{transfer_id}/{step}", headers=world["heads"][who], json={})


def sees(client, world, who, child) -> bool:
    return client.get(f"/api/v1/children/{world[child]}", headers=world["heads"][who]).status_code == 200


def test_a_child_belongs_to_the_registering_users_agency(app, world):
    with app.app_context():
        child = db.session.get(Child, uuid.UUID(world["consented"]))
        assert str(child.agency_id) == world["north"]


def test_limited_agencies_see_only_their_children_and_others_see_all(client, world):
    assert sees(client, world, "mgr.n", "consented") and not sees(client, world, "mgr.n", "southern")
    assert sees(client, world, "mgr.s", "southern") and not sees(client, world, "mgr.s", "consented")
    # Central does not limit its staff, and a manager of no agency sees all, as before issue 13.
    assert all(sees(client, world, who, c) for who in ("mgr.c", "boss") for c in ("consented", "southern"))
    listed = client.get("/api/v1/children", headers=world["heads"]["mgr.s"]).get_json()
    assert {c["id"] for c in listed["items"]} == {world["southern"]}


def test_the_web_list_and_the_reports_honour_the_agency(app, world):
    office = app.test_client()
    sign_in(office, "mgr.s")
    listing = text(office.get("/children"))
    with app.app_context():
        codes = {str(c.id): c.case_code for c in db.session.execute(db.select(Child)).scalars()}
        for child_id in (world["southern"], world["consented"]):  # both would be in the case list
            create_record("consent", {"child_id": uuid.UUID(child_id), "purpose": "reporting",
                                      "given_by": "child", "given_on": utcnow().date()}, Actor(None, "api"))
        db.session.commit()
    assert codes[world["southern"]] in listing and codes[world["consented"]] not in listing
    assert office.get(f"/children/{world['consented']}").status_code == 404
    # A limited manager gets the donor tables only, not the unsuppressed internal view.
    assert "Internal view, for managers" not in text(office.get("/reports", query_string={"view": "internal"}))
    # The case list: only children in reach, and with a reporting consent.
    today = utcnow().date().isoformat()
    cases = post(office, "/reports/cases.csv", {"start": "2025-01-01", "end": today})
    assert cases.status_code == 200
    body = text(cases)
    assert codes[world["southern"]] in body and codes[world["consented"]] not in body


def test_a_transfer_proposed_and_accepted_moves_the_child_and_ends_the_senders_access(client, world, app):
    created = propose(client, world)
    assert created.status_code == 201, created.get_json()
    transfer = created.get_json()
    assert transfer["status"] == "proposed" and transfer["from_agency"] == "North NGO"
    assert transfer["to_agency"] == "South Probation" and not transfer["consent_overridden"]
    # The receiving manager sees it in their incoming list and may read it, not the child yet.
    incoming = client.get("/api/v1/transfers", headers=world["heads"]["mgr.s"]).get_json()["items"]
    assert [t["id"] for t in incoming] == [transfer["id"]]
    assert client.get(f"/api/v1/transfers/{transfer['id']}", headers=world["heads"]["mgr.s"]).status_code == 200
    assert not sees(client, world, "mgr.s", "consented")
    assert client.get("/api/v1/transfers", headers=world["heads"]["mgr.n"]).get_json()["items"] == []
    # Only the receiving agency's managers accept it.
    refused = decide(client, world, transfer["id"], "accept", "mgr.n")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_agency_manager"
    accepted = decide(client, world, transfer["id"], "accept", "mgr.s")
    assert accepted.status_code == 200, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "accepted" and body["decided_on"] == utcnow().date().isoformat()
    assert sees(client, world, "mgr.s", "consented")
    assert not sees(client, world, "mgr.n", "consented") and not sees(client, world, "cw.n", "consented")
    child = client.get(f"/api/v1/children/{world['consented']}", headers=world["heads"]["mgr.s"]).get_json()
    assert child["caseworker"] is None  # the receiving manager assigns one of theirs
    # Finished: no further step.
    again = decide(client, world, transfer["id"], "decline", "mgr.s")
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "invalid_transition"
    history = client.get(f"/api/v1/children/{world['consented']}/transfers", headers=world["heads"]["mgr.s"])
    assert [t["status"] for t in history.get_json()["items"]] == ["accepted"]
    with app.app_context():
        actions = sorted(db.session.execute(db.select(AuditEvent.action).where(
            AuditEvent.target == transfer["id"])).scalars())
        assert actions == ["transfer.accepted", "transfer.propose"]


def test_declined_and_withdrawn_transfers_leave_the_child_where_it_was(client, world):
    first = propose(client, world).get_json()
    assert decide(client, world, first["id"], "withdraw", "mgr.s").status_code == 403  # not the sender
    declined = decide(client, world, first["id"], "decline", "mgr.s")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    second = propose(client, world).get_json()
    assert decide(client, world, second["id"], "decline", "mgr.n").status_code == 403  # not the receiver
    withdrawn = decide(client, world, second["id"], "withdraw", "mgr.n")
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    assert decide(client, world, second["id"], "accept", "mgr.s").get_json()["error"]["code"] == "invalid_transition"
    assert sees(client, world, "mgr.n", "consented") and not sees(client, world, "mgr.s", "consented")


def test_who_may_propose_and_what_is_refused(client, world):
    # The caseworker: managers only. Another agency's manager: the child is out of reach (404).
    assert propose(client, world, who="cw.n").status_code == 403
    assert propose(client, world, who="mgr.s").status_code == 404
    # An unlimited manager of another agency sees the child but is not of the sending agency.
    other = propose(client, world, who="mgr.c")
    assert other.status_code == 403 and other.get_json()["error"]["details"] == {"side": "sending"}
    same = propose(client, world, to="north")
    assert same.status_code == 422 and "to_agency_id" in same.get_json()["error"]["details"]["fields"]
    no_reason = propose(client, world, reason="")
    assert no_reason.status_code == 422
    assert propose(client, world).status_code == 201
    pending = propose(client, world, to="central")
    assert pending.status_code == 409 and pending.get_json()["error"]["code"] == "transfer_pending"


def test_a_transfer_needs_the_referral_consent_or_a_managers_override(client, world, app):
    refused = propose(client, world, child="bare")
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "consent_required"
    overridden = propose(client, world, child="bare", override_reason="Court order to move the case (fictional)")
    assert overridden.status_code == 201 and overridden.get_json()["consent_overridden"]
    with app.app_context():
        (row,) = db.session.execute(db.select(ConsentOverride)).scalars().all()
        assert (row.purpose, row.action, str(row.target_id)) == ("referral", "transfer", overridden.get_json()["id"])
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "consent.override")).scalar_one()
        assert "Court" not in str(event.details)
    # An override's proposal is not re-checked on acceptance: the override was the decision.
    assert decide(client, world, overridden.get_json()["id"], "accept", "mgr.s").status_code == 200


def test_a_consent_withdrawn_before_acceptance_stops_the_transfer(client, world, app):
    transfer = propose(client, world).get_json()
    with app.app_context():
        from models.care import Consent

        consent = db.session.execute(db.select(Consent)).scalar_one()
        update_record(consent, {"withdrawn_on": utcnow().date()}, Actor(user=None, source="api"))
        db.session.commit()
    stopped = decide(client, world, transfer["id"], "accept", "mgr.s")
    assert stopped.status_code == 422 and stopped.get_json()["error"]["code"] == "consent_required"
    assert decide(client, world, transfer["id"], "decline", "mgr.s").status_code == 200


def test_the_sending_caseworkers_device_removes_the_child_on_its_next_pull(app, client, world):
    with app.app_context():
        cw = db.session.execute(db.select(User).where(User.username == "cw.n")).scalar_one()
        _device, token = enroll_device(cw, "North phone", by=None)
        db.session.commit()
    phone = Phone(client, token)
    child_id = new_id()
    assert phone.push_ok(mutation("child", child_id, fields=child_fields()))[0]["status"] == "applied"
    create = client.post(f"/api/v1/children/{child_id}/consents", headers=world["heads"]["mgr.n"], json={
        "purpose": "referral", "given_by": "child", "given_on": utcnow().date().isoformat()})
    assert create.status_code == 201, create.get_json()
    assert ("child", child_id) in [(c["entity"], c["id"]) for c in phone.pull_all()]
    world["pushed"] = child_id
    transfer = propose(client, world, child="pushed").get_json()
    assert decide(client, world, transfer["id"], "accept", "mgr.s").status_code == 200
    removed = phone.pull_all()
    assert ("child", child_id) in [(c["entity"], c["id"]) for c in removed]
    assert all(c["op"] == "remove" for c in removed)
    assert {c["entity"] for c in removed} >= {"child", "consent"}


def test_transfers_on_the_web_from_the_child_page_to_the_incoming_list(app, world):
    north, south = app.test_client(), app.test_client()
    sign_in(north, "mgr.n")
    page = text(north.get(f"/children/{world['consented']}"))
    assert "Agency and transfers" in page and "North NGO" in page and "Transfer to another agency" in page
    bad = post(north, f"/children/{world['consented']}/transfers", {"to_agency_id": world["south"], "reason": ""})
    assert bad.status_code == 422 and "Say why the case is transferred." in text(bad)
    made = post(north, f"/children/{world['consented']}/transfers",
                {"to_agency_id": world["south"], "reason": "Family moved (fictional)"})
    assert made.status_code == 302
    sign_in(south, "mgr.s")
    incoming = text(south.get("/transfers"))
    assert "Family moved (fictional)" in incoming and "North NGO" in incoming
    with app.app_context():
        from models.transfers import Transfer

        transfer_id = db.session.execute(db.select(Transfer.id)).scalar_one()
    assert post(north, f"/transfers/{transfer_id}/decision", {"status": "accepted"}).status_code == 302
    accepted = post(south, f"/transfers/{transfer_id}/decision", {"status": "accepted"})
    assert accepted.status_code == 302 and world["consented"] in accepted.headers["Location"]
    child_page = text(south.get(f"/children/{world['consented']}"))
    assert "South Probation" in child_page and "transfer to South Probation accepted" in child_page
    assert north.get(f"/children/{world['consented']}").status_code == 404


def test_managers_who_see_all_put_staff_in_agencies_and_limited_ones_may_not(app, world, client):
    boss, limited = app.test_client(), app.test_client()
    sign_in(boss, "boss")
    sign_in(limited, "mgr.n")
    with app.app_context():
        cw_s = db.session.execute(db.select(User).where(User.username == "cw.s")).scalar_one()
        cw_id = cw_s.id
    assert "Staff and their agency" in text(boss.get("/agencies"))
    assert "Staff and their agency" not in text(limited.get("/agencies"))
    assert post(limited, f"/staff/{cw_id}/agency", {"agency_id": world["north"]}).status_code == 403
    assert post(boss, f"/staff/{cw_id}/agency", {"agency_id": "not-an-id"}).status_code == 302
    assert post(boss, f"/staff/{cw_id}/agency", {"agency_id": world["north"]}).status_code == 302
    with app.app_context():
        assert str(db.session.get(User, cw_id).agency_id) == world["north"]
        assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.agency")).scalar_one()
    lift = client.patch(f"/api/v1/agencies/{world['north']}", headers=world["heads"]["mgr.n"],
                        json={"limits_reach": False})
    assert lift.status_code == 403 and lift.get_json()["error"]["code"] == "manager_only"
    with app.app_context():
        assert db.session.get(Agency, uuid.UUID(world["north"])).limits_reach


def test_a_limited_caseworker_holds_only_children_of_their_agency(client, world, app):
    boss = world["heads"]["boss"]
    # Registered by a manager of no agency for North's caseworker: the child is North's.
    made = client.post("/api/v1/children", headers=boss, json={
        "given_name": "Fictional", "sex": "male", "district": "Kitgum", "caseworker": "cw.n"})
    assert made.status_code == 201, made.get_json()
    assert sees(client, {**world, "made": made.get_json()["id"]}, "mgr.n", "made")
    # Handing a North child to South's caseworker is refused: transfer it first.
    child = client.get(f"/api/v1/children/{world['consented']}", headers=boss).get_json()
    moved = client.patch(f"/api/v1/children/{world['consented']}", headers={**boss, "If-Match": str(child["version"])},
                         json={"caseworker": "cw.s"})
    assert moved.status_code == 422 and "transfer the case" in moved.get_json()["error"]["details"]["fields"]["caseworker"][0]
    # After the transfer, the receiving manager assigns their own caseworker.
    transfer = propose(client, world).get_json()
    assert decide(client, world, transfer["id"], "accept", "mgr.s").status_code == 200
    child = client.get(f"/api/v1/children/{world['consented']}", headers=world["heads"]["mgr.s"]).get_json()
    assigned = client.patch(f"/api/v1/children/{world['consented']}",
                            headers={**world["heads"]["mgr.s"], "If-Match": str(child["version"])},
                            json={"caseworker": "cw.s"})
    assert assigned.status_code == 200, assigned.get_json()
    assert sees(client, world, "cw.s", "consented")


def test_de_identification_erases_the_reasons_of_transfers_and_overrides(client, world, app):
    from models.retention import deidentify
    from models.transfers import Transfer

    transfer = propose(client, world, child="bare", override_reason="Fictional court order").get_json()
    with app.app_context():
        deidentify([uuid.UUID(world["bare"])])
        db.session.commit()
        kept = db.session.get(Transfer, uuid.UUID(transfer["id"]))
        assert kept.reason is None and kept.status == "proposed"
        assert db.session.execute(db.select(ConsentOverride.reason)).scalar_one() is None


def test_a_limited_manager_reads_the_audit_trail_of_their_agencys_children_only(app, client, world):
    assert sees(client, world, "mgr.n", "consented") and sees(client, world, "mgr.s", "southern")  # child.read
    with app.app_context():
        codes = {str(c.id): c.case_code for c in db.session.execute(db.select(Child)).scalars()}
    office = app.test_client()
    sign_in(office, "mgr.s")
    trail = text(office.get("/audit"))
    assert codes[world["southern"]] in trail and codes[world["consented"]] not in trail
    everyone = app.test_client()
    sign_in(everyone, "boss")
    assert codes[world["consented"]] in text(everyone.get("/audit"))


def test_the_web_offers_only_caseworkers_who_may_hold_the_child(app, world):
    """A limited agency's staff are not offered another agency's child (models.access.may_hold): the
    child page's reassignment and the registration form of a limited agency's manager; a manager of no
    agency registers into the caseworker's agency, so is offered everyone."""
    def offered(page) -> set:
        return {name for name in ("cw.n", "mgr.n", "cw.s", "mgr.s", "mgr.c", "boss") if f'value="{name}"' in page}

    north, boss = app.test_client(), app.test_client()
    sign_in(north, "mgr.n")
    sign_in(boss, "boss")
    assert offered(text(north.get(f"/children/{world['consented']}"))) == {"cw.n", "mgr.n", "mgr.c", "boss"}
    assert offered(text(boss.get(f"/children/{world['southern']}"))) == {"cw.s", "mgr.s", "mgr.c", "boss"}
    assert offered(text(north.get("/children/new"))) == {"cw.n", "mgr.n", "mgr.c", "boss"}
    assert offered(text(boss.get("/children/new"))) == {"cw.n", "mgr.n", "cw.s", "mgr.s", "mgr.c", "boss"}
