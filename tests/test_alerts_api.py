"""The alert inbox, acknowledging and resolving, the follow-up worklist, and the urgent path from the API."""

import uuid
from datetime import date

import pytest
from sqlalchemy import text

from config import RULE_DEFAULTS
from models import Actor, Alert, AuditEvent, AuditEventChild, Child, Followup, User, alerting, db
from models.followups import RESOLUTION_NOTE_MAX
from models.planning import after_changes
from models.retention import deidentify
from sync.pull_rows import shape_of
from tests.factories import make_child, make_user, token_for, walk
from tests.sync_devices import enrol_device

IN_FOLLOW_UP = ["registered", "assessed", "reunified", "follow_up"]


@pytest.fixture
def case(app):
    """A child in follow-up with a planned visit, two managers, its caseworker and another one."""
    with app.app_context():
        cw, cw2 = make_user("caseworker", username="cw.a"), make_user("caseworker", username="cw.b")
        make_user("manager", username="boss.a")
        make_user("manager", username="boss.b")
        make_user("analyst", username="numbers")
        child = make_child(cw)
        walk(child, IN_FOLLOW_UP, Actor(user=cw, source="api"))  # reunified 2025-02-09
        other = make_child(cw2)
        walk(other, IN_FOLLOW_UP, Actor(user=cw2, source="api"))
        db.session.commit()
        after_changes({child.id, other.id}, today=date(2025, 2, 20), rules=RULE_DEFAULTS)
        db.session.commit()
        visit = db.session.execute(db.select(Followup).where(
            Followup.child_id == child.id, Followup.kind == "visit")).scalar_one()
        assert visit.due_on == date(2025, 2, 23) and visit.planned_by_rule == "first_visit"
        return {"child": str(child.id), "visit": str(visit.id), "version": visit.version,
                "case_code": child.case_code}


@pytest.fixture
def auth(client, app):
    def headers(username):
        with app.app_context():
            user = db.session.execute(db.select(User).where(User.username == username)).scalar_one()
            return token_for(client, user)
    return headers


def alerts(client, headers, **query):
    response = client.get("/api/v1/alerts", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("outcome", [
    {"seen": False, "not_seen_reason": "abducted"},
    {"seen": True, "concerns": ["school_dropout", "protection"]},
])
def test_danger_reported_raises_an_urgent_alert_to_every_manager_at_once(client, auth, case, outcome):
    cw = auth("cw.a")
    response = client.patch(f"/api/v1/followups/{case['visit']}", headers={**cw, "If-Match": str(case["version"])},
                            json={"status": "done", "completed_on": "2025-02-23", **outcome})
    assert response.status_code == 200, response.get_json()

    # Managers see every alert: one per manager, both raised by the request itself, not by a scan.
    boss = alerts(client, auth("boss.a"), severity="urgent")
    assert sorted((a["rule"], a["recipient"], a["case_code"], a["due_on"], a["suggested_transition"])
                  for a in boss["items"]) == [
        ("danger_reported", name, case["case_code"], "2025-02-23", "missing") for name in ("boss.a", "boss.b")]
    assert {(a["status"], a["severity"]) for a in boss["items"]} == {("open", "urgent")}
    assert alerts(client, auth("boss.b"), recipient="boss.b")["total"] == 1
    # The caseworker who reported it is not sent an alert about their own report.
    assert alerts(client, cw)["total"] == 0

    # The same outcome saved again raises nothing new.
    visit = client.get(f"/api/v1/followups/{case['visit']}", headers=cw).get_json()
    again = client.patch(f"/api/v1/followups/{case['visit']}", headers={**cw, "If-Match": str(visit["version"])},
                         json={"wellbeing": "poor"})
    assert again.status_code == 200
    assert alerts(client, auth("boss.a"), severity="urgent")["total"] == 2

    # Taking the offered transition resolves the alerts: the child moved on.
    moved = client.post(f"/api/v1/children/{case['child']}/transitions", headers=auth("boss.a"),
                        json={"to_stage": "missing", "occurred_on": "2025-02-24",
                              "reason": "Fictional: reported taken by an armed group."})
    assert moved.status_code == 201, moved.get_json()
    after = alerts(client, auth("boss.a"))
    assert [(a["status"], a["suggested_transition"]) for a in after["items"]
            if a["rule"] == "danger_reported"] == [("resolved", None)] * 2
    # The planned visit of a missing child is cancelled.
    visits = client.get(f"/api/v1/children/{case['child']}/followups", headers=auth("boss.a")).get_json()
    assert [(f["kind"], f["status"]) for f in visits["items"] if f["status"] == "scheduled"] == []


def test_a_harmless_outcome_raises_nothing(client, auth, case):
    cw = auth("cw.a")
    response = client.patch(f"/api/v1/followups/{case['visit']}", headers={**cw, "If-Match": str(case["version"])},
                            json={"status": "done", "completed_on": "2025-02-23", "seen": False,
                                  "not_seen_reason": "at_school", "concerns": ["health"]})
    assert response.status_code == 200
    assert alerts(client, auth("boss.a"))["total"] == 0


def scan(app, day):
    with app.app_context():
        alerting.scan(day, RULE_DEFAULTS)
        db.session.commit()


def test_inbox_scope_filters_and_who_may_acknowledge(client, auth, case, app):
    scan(app, date(2025, 3, 10))  # both first visits (due 02-23) are overdue and escalated
    mine = alerts(client, auth("cw.a"))
    assert sorted(a["rule"] for a in mine["items"]) == ["visit_overdue"]
    assert mine["items"][0]["case_code"] == case["case_code"] and mine["items"][0]["recipient"] == "cw.a"
    assert "given_name" not in mine["items"][0]
    boss = alerts(client, auth("boss.a"))
    assert boss["total"] == 6  # two overdue to the caseworkers, two escalations to each manager
    assert alerts(client, auth("boss.a"), recipient="boss.b")["total"] == 2
    assert alerts(client, auth("boss.a"), child=case["child"], recipient="cw.a")["total"] == 1
    assert alerts(client, auth("boss.a"), severity="info")["total"] == 0
    # A caseworker asking for someone else's alerts gets none.
    assert alerts(client, auth("cw.a"), recipient="boss.a")["total"] == 0
    for role in ("numbers",):
        assert client.get("/api/v1/alerts", headers=auth(role)).status_code == 403
    bad = client.get("/api/v1/alerts?status=closed", headers=auth("boss.a"))
    assert bad.status_code == 422 and "status" in bad.get_json()["error"]["details"]["fields"]

    alert_id = mine["items"][0]["id"]
    # Another caseworker may not acknowledge it and cannot even tell it exists.
    other = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth("cw.b"))
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "not_found"
    assert client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=auth("cw.b")).status_code == 404
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth("numbers")).status_code == 403
    with app.app_context():
        assert db.session.get(Alert, uuid.UUID(alert_id)).status == "open"

    ack = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth("cw.a"))
    assert ack.status_code == 200 and ack.get_json()["status"] == "acknowledged"
    assert ack.get_json()["version"] == 2
    # A manager may resolve anyone's alert; resolving twice changes nothing.
    done = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=auth("boss.b"))
    assert done.status_code == 200 and done.get_json()["status"] == "resolved"
    again = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=auth("boss.b"))
    assert again.get_json()["version"] == done.get_json()["version"]
    late = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=auth("cw.a"))
    assert late.status_code == 409
    missing = client.post(f"/api/v1/alerts/{uuid.uuid4()}/resolve", headers=auth("boss.a"))
    assert missing.status_code == 404
    assert alerts(client, auth("cw.a"), status="open")["total"] == 0


def test_followup_worklist_is_scoped_like_children(client, auth, case, monkeypatch):
    import server.api.alerts as api

    monkeypatch.setattr(api, "today", lambda: date(2025, 2, 22))  # the visit is due tomorrow
    cw = auth("cw.a")
    due = client.get("/api/v1/followups?status=due", headers=cw).get_json()
    assert [(f["kind"], f["due_on"], f["case_code"]) for f in due["items"]] == [
        ("visit", "2025-02-23", case["case_code"])]
    assert client.get("/api/v1/followups?status=overdue", headers=cw).get_json()["total"] == 0
    # Plan review and visit of the caseworker's one child; the manager sees both children's.
    assert client.get("/api/v1/followups", headers=cw).get_json()["total"] == 2
    assert client.get("/api/v1/followups?status=scheduled", headers=auth("boss.a")).get_json()["total"] == 4
    monkeypatch.setattr(api, "today", lambda: date(2025, 3, 1))
    overdue = client.get("/api/v1/followups?status=overdue&kind=visit", headers=cw).get_json()
    assert [(f["due_on"], f["days_overdue"]) for f in overdue["items"]] == [("2025-02-23", 6)]
    assert client.get("/api/v1/followups", headers=auth("numbers")).status_code == 403
    assert client.get("/api/v1/followups?status=late", headers=cw).status_code == 422


def test_a_note_on_resolve_is_kept_encrypted_shown_to_who_may_see_the_child_and_erased(client, auth, case, app):
    scan(app, date(2025, 3, 10))
    (mine,) = alerts(client, auth("cw.a"))["items"]
    assert mine["resolution_note"] is None
    with app.app_context():
        phone = {"Authorization": "Bearer " + enrol_device(
            db.session.execute(db.select(User).where(User.username == "cw.a")).scalar_one())}
        db.session.commit()
    cursor = client.get("/api/v1/sync/pull?limit=500", headers=phone).get_json()["cursor"]
    url = f"/api/v1/alerts/{mine['id']}/resolve"
    too_long = client.post(url, json={"note": "x" * (RESOLUTION_NOTE_MAX + 1)}, headers=auth("cw.a"))
    assert too_long.status_code == 422 and "note" in too_long.get_json()["error"]["details"]["fields"]
    with app.app_context():
        assert db.session.get(Alert, uuid.UUID(mine["id"])).status == "open"  # nothing half-written
    done = client.post(url, json={"note": "  Visited with the elder; family agrees to a school visit.  "},
                       headers=auth("cw.a"))
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["resolution_note"] == "Visited with the elder; family agrees to a school visit."
    boss = alerts(client, auth("boss.a"), recipient="cw.a", status="resolved")["items"]
    assert [a["resolution_note"] for a in boss] == ["Visited with the elder; family agrees to a school visit."]
    with app.app_context():
        read = db.session.execute(db.select(AuditEvent).join(AuditEventChild).where(
            AuditEvent.action == "child.list", AuditEventChild.child_id == uuid.UUID(case["child"]))).scalars().all()
        assert [e.details["page"] for e in read] == ["alerts"]
    with app.app_context():
        stored = db.session.execute(text("SELECT resolution_note FROM alert WHERE resolution_note IS NOT NULL"))
        assert "elder" not in str(stored.scalar_one())  # encrypted at rest
    # Devices get the alerts addressed to them, whether or not they may still see the child: the note is
    # never even selected for a pull (a resolved alert leaves the device as a removal).
    pulled = client.get("/api/v1/sync/pull", query_string={"cursor": cursor}, headers=phone).get_json()
    assert [(c["id"], c["op"]) for c in pulled["changes"] if c["entity"] == "alert"] == [(mine["id"], "remove")]
    assert "resolution_note" not in {column.name for column in shape_of(Alert).columns}
    # Reassigned, the child is no longer the caseworker's: their alert stays theirs, without the note.
    with app.app_context():
        child = db.session.get(Child, uuid.UUID(case["child"]))
        child.caseworker_id = db.session.execute(db.select(User.id).where(User.username == "cw.b")).scalar_one()
        db.session.commit()
    (theirs,) = alerts(client, auth("cw.a"), status="resolved")["items"]
    assert theirs["id"] == mine["id"] and theirs["resolution_note"] is None
    # De-identifying the child erases the note.
    with app.app_context():
        deidentify([uuid.UUID(case["child"])])
        db.session.commit()
        assert db.session.get(Alert, uuid.UUID(mine["id"])).resolution_note is None
