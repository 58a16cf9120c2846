"""A child moved through the lifecycle to `closed` over the API by the right roles, and its records."""

import pytest

from models import db
from tests.factories import make_user, token_for


@pytest.fixture
def heads(client, app):
    with app.app_context():
        manager, cw = make_user("manager", username="mgr"), make_user("caseworker", username="cw")
        db.session.commit()
        return {"manager": token_for(client, manager), "cw": token_for(client, cw)}


def move(client, headers, child_id, to_stage, on, **extra):
    return client.post(f"/api/v1/children/{child_id}/transitions",
                       json={"to_stage": to_stage, "occurred_on": on, **extra}, headers=headers)


def test_whole_lifecycle_over_the_api(client, heads):
    cw, manager = heads["cw"], heads["manager"]
    child = client.post("/api/v1/children", json={"sex": "female", "identified_on": "2025-01-02"}, headers=cw).get_json()
    cid = child["id"]
    steps = [("reception", "2025-01-03"), ("registered", "2025-02-01"), ("assessed", "2025-02-05"),
             ("tracing", "2025-02-10"), ("reunified", "2025-03-01"), ("follow_up", "2025-03-02")]
    for stage, on in steps:
        # Out of tracing without a verified family link: a manager, with a reason (issue 14).
        by, extra = (manager, {"reason": "Fictional: family came without a request."}) if stage == "reunified" \
            else (cw, {})
        response = move(client, by, cid, stage, on, **extra)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["child"]["stage"] == stage
    proposal = move(client, cw, cid, "closure_pending", "2026-04-01")  # after 396 days: no reason needed
    assert proposal.status_code == 201, proposal.get_json()
    refused = move(client, cw, cid, "closed", "2026-04-02", closure_reason="reintegrated")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "manager_only"
    closed = move(client, manager, cid, "closed", "2026-04-02", closure_reason="reintegrated")
    assert closed.status_code == 201
    history = client.get(f"/api/v1/children/{cid}/transitions", headers=manager).get_json()["items"]
    assert [t["to_stage"] for t in history] == ["identified", *[s for s, _ in steps], "closure_pending", "closed"]
    assert client.get(f"/api/v1/children/{cid}", headers=manager).get_json()["phase"] == "reintegration"


def test_invalid_transition_names_the_allowed_targets(client, heads):
    child = client.post("/api/v1/children", json={"sex": "male"}, headers=heads["cw"]).get_json()
    response = move(client, heads["cw"], child["id"], "reunified", "2026-11-01")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"]["allowed"] == ["reception", "registered", "missing"]
    unknown = move(client, heads["cw"], child["id"], "heaven", "2026-11-01")
    assert unknown.status_code == 422 and "to_stage" in unknown.get_json()["error"]["details"]["fields"]


def test_child_records_and_visit_outcome(client, heads):
    cw = heads["cw"]
    cid = client.post("/api/v1/children", json={"sex": "female"}, headers=cw).get_json()["id"]
    consent = client.post(f"/api/v1/children/{cid}/consents",
                          json={"purpose": "tracing", "given_by": "caregiver", "given_on": "2026-11-01"}, headers=cw)
    assert consent.status_code == 201, consent.get_json()
    bad = client.post(f"/api/v1/children/{cid}/consents", json={"purpose": "marketing", "given_by": "child",
                                                                "given_on": "2026-11-01", "child_id": cid}, headers=cw)
    assert set(bad.get_json()["error"]["details"]["fields"]) == {"purpose", "child_id"}
    service = client.post(f"/api/v1/children/{cid}/services", json={"type": "education", "provider": "Fictional school"},
                          headers=cw)
    assert service.status_code == 201 and service.get_json()["status"] == "planned"
    assessment = client.post(f"/api/v1/children/{cid}/assessments", json={
        "kind": "psychosocial", "assessed_on": "2026-11-02", "scores": {"distress": 12}, "risk_level": "medium"},
        headers=cw)
    assert assessment.status_code == 201
    visit = client.post(f"/api/v1/children/{cid}/followups", json={"kind": "visit", "due_on": "2026-11-20"},
                        headers=cw).get_json()
    url = f"/api/v1/followups/{visit['id']}"
    incomplete = client.patch(url, json={"status": "done"}, headers={**cw, "If-Match": "1"})
    assert incomplete.status_code == 422
    assert set(incomplete.get_json()["error"]["details"]["fields"]) == {"completed_on", "seen"}
    done = client.patch(url, json={"status": "done", "completed_on": "2026-11-21", "seen": False,
                                   "not_seen_reason": "at_school"}, headers={**cw, "If-Match": "1"})
    assert done.status_code == 200 and done.get_json()["version"] == 2
    items = client.get(f"/api/v1/children/{cid}/followups", headers=cw).get_json()["items"]
    assert any(f["id"] == visit["id"] and f["status"] == "done" for f in items)


def test_deleted_records_refuse_changes(client, heads):
    manager = heads["manager"]
    cid = client.post("/api/v1/children", json={"sex": "female"}, headers=manager).get_json()["id"]
    assert client.delete(f"/api/v1/children/{cid}", headers={**manager, "If-Match": "1"}).status_code == 204
    assert client.get(f"/api/v1/children/{cid}", headers=manager).status_code == 404


def test_a_record_of_someone_elses_child_answers_as_if_it_did_not_exist(client, app, heads):
    with app.app_context():
        other = token_for(client, make_user("caseworker", username="cw.other"))
    child = client.post("/api/v1/children", json={"sex": "male"}, headers=heads["cw"]).get_json()
    visit = client.post(f"/api/v1/children/{child['id']}/followups", json={"kind": "visit", "due_on": "2026-11-20"},
                        headers=heads["cw"]).get_json()
    theirs = client.get(f"/api/v1/followups/{visit['id']}", headers=other)
    nobodys = client.get("/api/v1/followups/00000000-0000-4000-8000-000000000000", headers=other)
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.get_json() == nobodys.get_json()
