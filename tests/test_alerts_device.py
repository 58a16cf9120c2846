"""Alerts and devices: the urgent path from a device's push, a caseworker's alerts on the next pull,
and acknowledging one from the device."""

import uuid
from datetime import date

import pytest

from config import RULE_DEFAULTS
from models import Actor, Alert, Followup, db
from models.alerting import scan
from models.planning import after_changes
from tests.factories import make_child, make_user, walk
from tests.sync_devices import enrol_device


@pytest.fixture
def field(app):
    with app.app_context():
        cw = make_user("caseworker", username="cw.phone")
        make_user("manager", username="boss.one")
        make_user("manager", username="boss.two")
        child = make_child(cw)
        walk(child, ["registered", "assessed", "reunified", "follow_up"], Actor(user=cw, source="api"))
        db.session.commit()
        after_changes({child.id}, today=date(2025, 2, 20), rules=RULE_DEFAULTS)
        db.session.commit()
        visit = db.session.execute(db.select(Followup).where(Followup.kind == "visit")).scalar_one()
        token = enrol_device(cw)
        db.session.commit()
        return {"token": token, "visit": str(visit.id), "version": visit.version, "child": child.id,
                "case_code": child.case_code}


def push(client, token, *mutations):
    body = {"protocol": 1, "batch_id": str(uuid.uuid4()), "mutations": [
        {"mutation_id": str(uuid.uuid4()), "op": "update", **m} for m in mutations]}
    response = client.post("/api/v1/sync/push", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def pull_alerts(client, token):
    response = client.get("/api/v1/sync/pull?limit=500", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return [c for c in response.get_json()["changes"] if c["entity"] == "alert"]


def test_danger_pushed_from_a_device_alerts_every_manager_in_the_same_batch(client, app, field):
    results = push(client, field["token"], {
        "entity": "followup", "id": field["visit"], "base_version": field["version"],
        "fields": {"status": "done", "completed_on": "2025-02-23", "seen": False,
                   "not_seen_reason": "with_armed_group"}})
    assert results[0]["status"] == "applied", results
    with app.app_context():
        alerts = db.session.execute(db.select(Alert)).scalars().all()
        assert sorted((a.rule, a.severity, a.status, a.due_on) for a in alerts) == [
            ("danger_reported", "urgent", "open", date(2025, 2, 23))] * 2
        assert all(a.child_id == field["child"] and a.followup_id == uuid.UUID(field["visit"]) for a in alerts)
    # The caseworker's device is not sent the managers' alerts.
    assert pull_alerts(client, field["token"]) == []


def test_open_alerts_reach_the_caseworkers_device_and_it_may_acknowledge_them(client, app, field):
    with app.app_context():
        created = scan(date(2025, 3, 10), RULE_DEFAULTS).created
        db.session.commit()
        mine = [a for a in created if a.rule == "visit_overdue"]
        assert len(mine) == 1 and len(created) == 3
        alert_id, version = str(mine[0].id), mine[0].version
    pulled = pull_alerts(client, field["token"])
    assert [(c["id"], c["op"], c["data"]["rule"], c["data"]["status"]) for c in pulled] == [
        (alert_id, "upsert", "visit_overdue", "open")]
    assert pulled[0]["data"]["due_on"] == "2025-02-23" and pulled[0]["data"]["child_id"] == str(field["child"])
    results = push(client, field["token"], {"entity": "alert", "id": alert_id, "base_version": version,
                                            "fields": {"status": "acknowledged"}})
    assert results[0]["status"] == "applied", results
    with app.app_context():
        assert db.session.get(Alert, uuid.UUID(alert_id)).status == "acknowledged"
