"""Every page and action of the manager web, for every role, including the refusals.

Actions go through the domain functions; the tests check the records they leave behind (stage,
history with source "web", audit events) as well as the page the person sees.
"""

import uuid
from datetime import timedelta

import pytest

from models import (
    Actor,
    Alert,
    AuditEvent,
    Child,
    Device,
    Followup,
    RecordHistory,
    ScopeChange,
    StageTransition,
    User,
    db,
    utcnow,
)
from models.records import create_record
from models.syncstate import Conflict
from tests.factories import make_child, make_user, walk
from tests.web_client import post, sign_in, text

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def world(app):
    """Five people, a child of each caseworker, a closure waiting, an alert, a device and a conflict."""
    with app.app_context():
        people = {
            "admin": make_user("admin", username="w.admin"),
            "manager": make_user("manager", username="w.manager"),
            "cw": make_user("caseworker", username="w.cw"),
            "cw2": make_user("caseworker", username="w.cw2"),
            "analyst": make_user("analyst", username="w.analyst"),
        }
        boss = Actor(user=people["manager"], source="api")
        mine = make_child(people["cw"], given_name=HOSTILE, family_name="Fictional", armed_group=HOSTILE,
                          birth_year=utcnow().year - 16)
        walk(mine, ["registered", "assessed", "reunified", "follow_up"], boss)
        visit = create_record("followup", {"child_id": mine.id, "kind": "visit", "status": "scheduled",
                                           "due_on": utcnow().date() - timedelta(days=3)}, boss)
        other = make_child(people["cw2"], given_name="Other", sex="male")
        walk(other, ["registered", "assessed", "reunified", "follow_up", "closure_pending"], boss)
        alert = create_record("alert", {"key": f"{mine.id}:test", "rule": "visit_overdue", "severity": "urgent",
                                        "child_id": mine.id, "recipient_id": people["cw"].id,
                                        "due_on": utcnow().date()}, boss)
        device = Device(user_id=people["cw"].id, label="Tablet 1", token_hash=Device.hash_secret("x"))
        db.session.add(device)
        db.session.flush()
        conflict = Conflict(child_id=mine.id, entity="child", record_id=mine.id, device_id=device.id,
                            user_id=people["cw"].id, base_version=1, server_version=mine.version,
                            fields=["risk_level"], base_values={"risk_level": None},
                            server_values={"risk_level": "high"}, device_values={"risk_level": "low"})
        db.session.add(conflict)
        mine.needs_review = True
        db.session.commit()
        return {"mine": mine.id, "mine_code": mine.case_code, "other": other.id, "visit": visit.id,
                "alert": alert.id, "device": device.id, "conflict": conflict.id,
                **{f"{k}_id": u.id for k, u in people.items()}}


def as_role(app, key):
    client = app.test_client()
    response = sign_in(client, {"admin": "w.admin", "manager": "w.manager", "cw": "w.cw", "cw2": "w.cw2",
                                "analyst": "w.analyst"}[key])
    assert response.status_code == 302
    return client


PAGES = ("/", "/children", "/followups", "/alerts", "/conflicts", "/approvals", "/devices", "/users", "/audit")
# Expected status per role (the dashboard redirects admins and analysts to their own pages).
ALLOWED = {
    "manager": {"/": 200, "/children": 200, "/followups": 200, "/alerts": 200, "/conflicts": 200,
                "/approvals": 200, "/devices": 200, "/users": 403, "/audit": 200},
    "cw": {"/": 200, "/children": 200, "/followups": 200, "/alerts": 200, "/conflicts": 200,
           "/approvals": 403, "/devices": 403, "/users": 403, "/audit": 403},
    "admin": {"/": 302, "/children": 403, "/followups": 403, "/alerts": 403, "/conflicts": 403,
              "/approvals": 403, "/devices": 200, "/users": 200, "/audit": 200},
    "analyst": {"/": 302, "/children": 403, "/followups": 403, "/alerts": 403, "/conflicts": 403,
                "/approvals": 403, "/devices": 403, "/users": 403, "/audit": 403},
}


@pytest.mark.parametrize("role", list(ALLOWED))
def test_every_page_for_every_role(app, world, role):
    client = as_role(app, role)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == ALLOWED[role][path], (role, path)
        if response.status_code == 200:
            assert "<nav" in text(response) and "<main" in text(response)


@pytest.mark.parametrize("role,status", [("cw2", 404), ("analyst", 403), ("admin", 403)])
def test_a_child_is_refused_outside_the_scope(app, world, role, status):
    client = as_role(app, role)
    assert client.get(f"/children/{world['mine']}").status_code == status
    assert post(client, f"/children/{world['mine']}/move", {"to_stage": "closure_pending"}).status_code == status
    assert post(client, f"/followups/{world['visit']}/outcome", {"status": "done"}).status_code == status
    assert client.get(f"/conflicts/{world['conflict']}").status_code == status
    if role == "cw2":
        listed = text(client.get("/children"))
        assert world["mine_code"] not in listed
        assert client.get(f"/children/{uuid.uuid4()}").status_code == 404
        assert client.get("/children/not-a-uuid").status_code == 404


def test_hostile_names_render_as_text_everywhere(app, world):
    manager = as_role(app, "manager")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    pages = ["/children", f"/children/{world['mine']}", "/", "/followups", "/alerts", "/conflicts",
             f"/conflicts/{world['conflict']}"]
    for path in pages:
        body = text(manager.get(path))
        assert HOSTILE not in body, path
    assert escaped in text(manager.get("/children"))
    assert escaped in text(manager.get(f"/children/{world['mine']}"))
    shown = text(post(manager, f"/children/{world['mine']}/restricted"))
    assert HOSTILE not in shown and shown.count(escaped) >= 2  # the name and the armed group
    cw = as_role(app, "cw")
    assert HOSTILE not in text(cw.get(f"/children/{world['mine']}"))


def test_restricted_profile_is_shown_on_request_and_audited(app, world):
    manager = as_role(app, "manager")
    page = text(manager.get(f"/children/{world['mine']}"))
    assert "Show restricted CAAFAG profile" in page and "CAAFAG profile (restricted)" not in page
    shown = post(manager, f"/children/{world['mine']}/restricted")
    assert shown.status_code == 200 and "CAAFAG profile (restricted)" in text(shown)
    # The armed group (same text as the name in this fixture) appears only once asked for.
    assert text(shown).count("&lt;script&gt;") > page.count("&lt;script&gt;")
    with app.app_context():
        events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "child.restricted_read"))
        assert [e.child_id for e in events.scalars()] == [world["mine"]]
    # A stale save of the profile shows it again: that too is a restricted read.
    stale = post(manager, f"/children/{world['mine']}/edit", {"part": "restricted", "version": "1"})
    assert stale.status_code == 409 and "CAAFAG profile (restricted)" in text(stale)
    with app.app_context():
        events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "child.restricted_read"))
        assert len(events.all()) == 2
    cw = as_role(app, "cw")
    assert "Show restricted" not in text(cw.get(f"/children/{world['mine']}"))
    assert post(cw, f"/children/{world['mine']}/restricted").status_code == 403
    assert post(cw, f"/children/{world['mine']}/edit", {"part": "restricted", "version": "1"}).status_code == 403


def test_child_page_shows_profile_timeline_and_actions(app, world):
    cw = as_role(app, "cw")
    page = text(cw.get(f"/children/{world['mine']}"))
    for expected in ("Identity and family", "Timeline", "reunified → follow up", "sync conflict on child",
                     "urgent alert", "Move to another stage", "Record the visit due", "Edit details"):
        assert expected in page, expected
    assert "Reassign the caseworker" not in page  # managers only
    assert "Reassign the caseworker" in text(as_role(app, "manager").get(f"/children/{world['mine']}"))
    with app.app_context():
        assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "child.read")).first()


def test_move_to_an_allowed_stage_through_the_domain(app, world):
    cw = as_role(app, "cw")
    today = utcnow().date().isoformat()
    refused = post(cw, f"/children/{world['mine']}/move", {"to_stage": "closed", "occurred_on": today})
    assert refused.status_code == 422 and "cannot move to &#39;closed&#39;" in text(refused)
    no_reason = post(cw, f"/children/{world['mine']}/move", {"to_stage": "missing", "occurred_on": today})
    assert no_reason.status_code == 422 and "Say what is known" in text(no_reason)
    future = post(cw, f"/children/{world['mine']}/move", {"to_stage": "assessed", "occurred_on": "2999-01-01"})
    assert future.status_code == 422 and "Cannot be in the future." in text(future)
    moved = post(cw, f"/children/{world['mine']}/move",
                 {"to_stage": "closure_pending", "occurred_on": today, "reason": "Stable at home, fictional."})
    assert moved.status_code == 302
    with app.app_context():
        child = db.session.get(Child, world["mine"])
        assert child.stage == "closure_pending"
        last = db.session.execute(db.select(RecordHistory).where(RecordHistory.entity == "stage_transition")
                                  .order_by(RecordHistory.id.desc()).limit(1)).scalar_one()
        assert last.source == "web"
    assert "moved to closure pending" in text(cw.get(moved.headers["Location"]))


def test_record_a_visit_outcome(app, world):
    cw = as_role(app, "cw")
    url = f"/followups/{world['visit']}/outcome"
    today = utcnow().date().isoformat()
    incomplete = post(cw, url, {"status": "done", "completed_on": today})
    assert incomplete.status_code == 422 and "Say whether the child was seen." in text(incomplete)
    done = post(cw, url, {"status": "done", "completed_on": today, "seen": "true", "wellbeing": "good",
                          "risk_level": "low", "concerns": ["school_dropout"], "notes": "Fictional visit."})
    assert done.status_code == 302
    with app.app_context():
        visit = db.session.get(Followup, world["visit"])
        assert (visit.status, visit.seen, visit.concerns, visit.version) == ("done", True, ["school_dropout"], 2)


def test_edit_details_with_optimistic_locking(app, world):
    cw = as_role(app, "cw")
    with app.app_context():
        version = db.session.get(Child, world["mine"]).version
    url = f"/children/{world['mine']}/edit"
    stale = post(cw, url, {"version": str(version - 1), "district": "Gulu", "sex": "female"})
    assert stale.status_code == 409 and "Someone changed this record" in text(stale)
    bad = post(cw, url, {"version": str(version), "sex": "female", "birth_year": "1800"})
    assert bad.status_code == 422
    saved = post(cw, url, {"version": str(version), "sex": "female", "district": "Gulu", "given_name": HOSTILE,
                           "family_name": "Fictional", "birth_year": str(utcnow().year - 16), "disability": "true"})
    assert saved.status_code == 302
    with app.app_context():
        child = db.session.get(Child, world["mine"])
        assert (child.district, child.disability, child.version) == ("Gulu", True, version + 1)
        assert child.armed_group == HOSTILE  # the restricted profile is untouched by this form


def test_manager_edits_the_restricted_profile(app, world):
    manager = as_role(app, "manager")
    with app.app_context():
        version = db.session.get(Child, world["mine"]).version
    saved = post(manager, f"/children/{world['mine']}/edit",
                 {"part": "restricted", "version": str(version), "armed_group": "Fictional group B",
                  "how_left": "escaped"})
    assert saved.status_code == 302
    with app.app_context():
        child = db.session.get(Child, world["mine"])
        assert (child.armed_group, child.how_left, child.given_name) == ("Fictional group B", "escaped", HOSTILE)


def test_reassign_is_for_managers_and_moves_the_scope(app, world):
    assert post(as_role(app, "cw"), f"/children/{world['mine']}/reassign", {"caseworker": "w.cw2"}).status_code == 403
    manager = as_role(app, "manager")
    unknown = post(manager, f"/children/{world['mine']}/reassign", {"caseworker": "nobody"})
    assert unknown.status_code == 422 and "No active caseworker" in text(unknown)
    assert post(manager, f"/children/{world['mine']}/reassign", {"caseworker": "w.cw2"}).status_code == 302
    with app.app_context():
        assert db.session.get(Child, world["mine"]).caseworker_id == world["cw2_id"]
        kinds = {(s.user_id, s.kind) for s in db.session.execute(db.select(ScopeChange)).scalars()}
        assert (world["cw_id"], "remove") in kinds and (world["cw2_id"], "add") in kinds
    assert as_role(app, "cw").get(f"/children/{world['mine']}").status_code == 404


def test_approvals_approve_and_send_back(app, world):
    manager = as_role(app, "manager")
    page = text(manager.get("/approvals"))
    assert "Approve closure" in page and "Fictional reason for the test." in page
    url = f"/approvals/{world['other']}"
    no_reason = post(manager, url, {"decision": "send_back"})
    assert no_reason.status_code == 422 and "Say why the closure is sent back" in text(no_reason)
    other_reason = post(manager, url, {"decision": "approve", "closure_reason": "other"})
    assert other_reason.status_code == 422
    # The same limits as a move through the API or the child page: reason at most 2,000 characters.
    too_long = post(manager, url, {"decision": "send_back", "reason": "x" * 2001})
    assert too_long.status_code == 422 and "Too long: 2000 characters at most." in text(too_long)
    assert post(manager, url, {"decision": "send_back", "reason": "One more visit, fictional."}).status_code == 302
    with app.app_context():
        assert db.session.get(Child, world["other"]).stage == "follow_up"
        child = db.session.get(Child, world["other"])
        from models.records import transition

        transition(child, "closure_pending", Actor(user=None, source="system"), occurred_on=utcnow().date(),
                   reason="Proposed again, fictional.", today=utcnow().date())
        db.session.commit()
    assert post(manager, url, {"decision": "approve", "closure_reason": "reintegrated"}).status_code == 302
    with app.app_context():
        closing = db.session.execute(db.select(StageTransition).where(
            StageTransition.child_id == world["other"], StageTransition.to_stage == "closed")).scalar_one()
        assert closing.closure_reason == "reintegrated" and closing.actor_id == world["manager_id"]
    again = post(manager, url, {"decision": "approve", "closure_reason": "reintegrated"}, follow_redirects=True)
    assert "is no longer waiting for approval (now closed)" in text(again)


def test_alerts_acknowledge_and_resolve(app, world):
    cw = as_role(app, "cw")
    page = text(cw.get("/alerts"))
    assert "visit overdue" in page and world["mine_code"] in page
    assert post(as_role(app, "cw2"), f"/alerts/{world['alert']}/acknowledge").status_code == 404
    assert post(cw, f"/alerts/{world['alert']}/acknowledge").status_code == 302
    with app.app_context():
        alert = db.session.get(Alert, world["alert"])
        assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", world["cw_id"])
    manager = as_role(app, "manager")
    assert post(manager, f"/alerts/{world['alert']}/resolve").status_code == 302
    with app.app_context():
        alert = db.session.get(Alert, world["alert"])
        assert (alert.status, alert.resolved_by_id, alert.version) == ("resolved", world["manager_id"], 3)
    assert "No alerts here." in text(cw.get("/alerts"))
    assert world["mine_code"] in text(cw.get("/alerts?status=resolved"))


def test_conflicts_side_by_side_and_resolved_field_by_field(app, world):
    cw = as_role(app, "cw")
    listed = text(cw.get("/conflicts"))
    assert world["mine_code"] in listed and "Risk level" in listed and "Tablet 1" in listed
    page = text(cw.get(f"/conflicts/{world['conflict']}"))
    assert "Keep high" in page and "Keep low" in page
    missing = post(cw, f"/conflicts/{world['conflict']}", {})
    assert missing.status_code == 422 and "Choose which value to keep." in text(missing)
    assert post(cw, f"/conflicts/{world['conflict']}", {"field:risk_level": "device"}).status_code == 302
    with app.app_context():
        child = db.session.get(Child, world["mine"])
        conflict = db.session.get(Conflict, world["conflict"])
        assert (child.risk_level, child.needs_review, conflict.status) == ("low", False, "resolved")
    assert "No open conflicts." in text(cw.get("/conflicts"))


def test_caseworker_cannot_resolve_a_restricted_conflict(app, world):
    with app.app_context():
        conflict = db.session.get(Conflict, world["conflict"])
        conflict.fields = ["armed_group"]
        conflict.server_values = {"armed_group": "Fictional A"}
        conflict.device_values = {"armed_group": "Fictional B"}
        db.session.commit()
    cw = as_role(app, "cw")
    page = text(cw.get(f"/conflicts/{world['conflict']}"))
    assert "Fictional A" not in page and "only a manager" in page
    assert post(cw, f"/conflicts/{world['conflict']}", {"field:armed_group": "device"}).status_code == 403
    manager = as_role(app, "manager")
    assert "Fictional B" in text(manager.get(f"/conflicts/{world['conflict']}"))
    assert post(manager, f"/conflicts/{world['conflict']}", {"field:armed_group": "device"}).status_code == 302


def test_enrol_a_device_shows_the_token_once_with_a_qr_code(app, world):
    from sync.devices import authenticate_device

    manager = as_role(app, "manager")
    missing = post(manager, "/devices", {"caseworker": "w.cw", "label": ""})
    assert missing.status_code == 422
    response = post(manager, "/devices", {"caseworker": "w.cw", "label": "Phone 7"})
    assert response.status_code == 303  # post/redirect/get: a reload does not enrol a second device
    page = text(manager.get(response.headers["Location"]))
    assert "<svg" in page and "shown only now" in page
    token = page.split('id="device-token"', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
    with app.app_context():
        device = authenticate_device(token, utcnow())
        assert device.label == "Phone 7" and device.user_id == world["cw_id"]
    assert token not in text(manager.get("/devices"))
    again = manager.get(response.headers["Location"], follow_redirects=True)
    assert token not in text(again) and "was shown once" in text(again)
    duplicate = post(manager, "/devices", {"caseworker": "w.cw2", "label": "phone 7"})
    assert duplicate.status_code == 409 and "already called" in text(duplicate)
    assert post(manager, "/devices", {"caseworker": "w.cw2", "label": "phone 7", "same_label": "true"}).status_code == 303


def test_revoke_a_device_with_wipe(app, world):
    admin = as_role(app, "admin")
    assert post(admin, f"/devices/{world['device']}/revoke", {"wipe": "true"}).status_code == 302
    with app.app_context():
        device = db.session.get(Device, world["device"])
        assert device.revoked_at is not None and device.wipe is True
    admin.get("/devices")  # shows the flash message once
    assert "Tablet 1" not in text(admin.get("/devices"))
    assert "Tablet 1" in text(admin.get("/devices?show=all"))
    assert post(as_role(app, "cw"), f"/devices/{world['device']}/revoke").status_code == 403
    assert "Enrol a device" not in text(admin.get("/devices"))


def test_devices_not_seen_lately(app, world):
    with app.app_context():
        db.session.add(Device(user_id=world["cw_id"], label="Seen today", token_hash="0" * 64,
                              last_seen_at=utcnow()))
        db.session.commit()
    page = text(as_role(app, "manager").get("/devices?stale=7"))
    assert "Tablet 1" in page and "Seen today" not in page


def test_users_create_role_disable_and_reset(app, world):
    admin = as_role(app, "admin")
    taken = post(admin, "/users", {"username": "w.cw", "role": "caseworker"})
    assert taken.status_code == 422 and "already exists" in text(taken)
    too_long = post(admin, "/users", {"username": "w.long", "role": "caseworker", "display_name": "x" * 121})
    assert too_long.status_code == 422 and "At most 120 characters" in text(too_long)
    created = post(admin, "/users", {"username": "w.new", "role": "caseworker", "display_name": "New person"})
    assert created.status_code == 201
    password = text(created).split('id="new-password"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    newcomer = app.test_client()
    assert sign_in(newcomer, "w.new", password).status_code == 302
    with app.app_context():
        new_id = db.session.execute(db.select(User.id).where(User.username == "w.new")).scalar_one()
    assert post(admin, f"/users/{new_id}/role", {"role": "analyst"}).status_code == 302
    assert newcomer.get("/children").status_code == 302  # a new role needs a new sign-in
    asked = post(admin, f"/users/{new_id}/password")  # confirm first: nothing is changed yet
    assert asked.status_code == 200 and 'name="confirmed" value="yes"' in text(asked)
    assert sign_in(app.test_client(), "w.new", password).status_code == 302
    reset = post(admin, f"/users/{new_id}/password", {"confirmed": "yes"})
    new_password = text(reset).split('id="new-password"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert new_password != password and sign_in(app.test_client(), "w.new", new_password).status_code == 302
    assert post(admin, f"/users/{new_id}/disable").status_code == 200  # the confirmation page
    assert sign_in(app.test_client(), "w.new", new_password).status_code == 302
    assert post(admin, f"/users/{new_id}/disable", {"confirmed": "yes"}).status_code == 302
    assert sign_in(app.test_client(), "w.new", new_password).status_code == 401
    assert post(admin, f"/users/{world['admin_id']}/disable").status_code == 302  # refused with a message
    with app.app_context():
        assert db.session.get(User, world["admin_id"]).active is True
        actions = set(db.session.execute(db.select(AuditEvent.action)).scalars())
        assert {"user.create", "user.role", "user.password_reset", "user.disable"} <= actions
    assert post(as_role(app, "manager"), "/users", {"username": "x", "role": "admin"}).status_code == 403


def test_audit_log_filters(app, world):
    manager = as_role(app, "manager")
    manager.get(f"/children/{world['mine']}")
    # Another manager reads the trail of children; an admin, who sees no child, does not.
    colleague = as_role(app, "manager")
    page = text(colleague.get(f"/audit?action=child&case_code={world['mine_code']}"))
    assert "child.read" in page and "w.manager" in page and "login" not in page.split("<tbody>")[1]
    assert "No events match." in text(colleague.get("/audit?user=nobody"))
    assert colleague.get("/audit?since=not-a-date").status_code == 200
    admin = as_role(app, "admin")
    assert "child.read" not in text(admin.get(f"/audit?case_code={world['mine_code']}")).split("<tbody>")[1]
    assert "login" in text(admin.get("/audit?action=login")).split("<tbody>")[1]


def test_followups_due_and_overdue(app, world):
    manager = as_role(app, "manager")
    page = text(manager.get("/followups?when=overdue"))
    assert world["mine_code"] in page and "3 days late" in page and "w.cw" in page and "1–1 of 1" in page
    assert "1–1 of 1" in text(manager.get("/followups?when=overdue&caseworker=w.cw&district=Kitgum"))
    assert "Nothing here." in text(manager.get("/followups?when=overdue&caseworker=w.cw2"))
    assert "Nothing here." in text(manager.get("/followups?when=overdue&kind=plan_review"))
    assert "1–1 of 1" in text(manager.get("/followups?when=all&kind=visit"))
    assert world["mine_code"] not in text(as_role(app, "cw2").get("/followups"))
    assert world["mine_code"] not in text(as_role(app, "manager").get("/followups?when=week"))


def test_dashboard_numbers_link_to_their_lists(app, world):
    page = text(as_role(app, "manager").get("/"))
    assert "<svg" in page and 'href="/children?stage=follow_up"' in page
    assert 'href="/followups?when=overdue">1<' in page
    assert 'href="/alerts?severity=urgent">1<' in page
    assert 'href="/conflicts">1<' in page
    assert 'href="/approvals">1<' in page
    assert 'href="/children?sex=female&amp;age_band=15_17">1<' in page
    cw_page = text(as_role(app, "cw").get("/"))
    assert "/approvals" not in cw_page and "2 children" not in cw_page and "1 child<" in cw_page


def test_children_filters_search_sort_and_pages(app, world):
    manager = as_role(app, "manager")
    assert world["mine_code"] in text(manager.get(f"/children?q={world['mine_code'].lower().replace('-', '')}"))
    assert world["mine_code"] not in text(manager.get("/children?sex=male"))
    assert world["mine_code"] in text(manager.get("/children?age_band=15_17&review=1&caseworker=w.cw"))
    assert world["mine_code"] not in text(manager.get("/children?stage=closure_pending"))
    assert world["mine_code"] in text(manager.get("/children?phase=reintegration&sort=-stage_since"))
    # Bad input is ignored, never an error.
    assert manager.get("/children?stage=nope&page=abc&sort=DROP").status_code == 200
    with app.app_context():
        for _ in range(55):
            make_child(None, sex="other")
        db.session.commit()
    first = text(manager.get("/children?sex=other"))
    assert "1–50 of 55" in first and 'rel="next"' in first
    second = text(manager.get("/children?sex=other&page=2"))
    assert "51–55 of 55" in second and 'rel="prev"' in second


def test_a_password_an_admin_handed_out_must_be_replaced_before_anything_else(app, world, client):
    admin = as_role(app, "admin")
    created = post(admin, "/users", {"username": "w.fresh", "role": "caseworker"})
    handed_out = text(created).split('id="new-password"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    # Not on the API either: a token would outlive the handover.
    refused = client.post("/api/v1/auth/token", json={"username": "w.fresh", "password": handed_out})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "password_change_required"
    fresh = app.test_client()
    assert sign_in(fresh, "w.fresh", handed_out).status_code == 302
    for page in ("/", "/children", f"/children/{world['mine']}"):
        response = fresh.get(page)
        assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert "choose your own" in text(fresh.get("/account"))
    same = post(fresh, "/account", {"current": handed_out, "new": handed_out, "again": handed_out})
    assert same.status_code == 422
    chosen = "my own long passphrase"
    assert post(fresh, "/account", {"current": handed_out, "new": chosen, "again": chosen}).status_code == 302
    assert fresh.get("/children").status_code == 200
    assert client.post("/api/v1/auth/token", json={"username": "w.fresh", "password": chosen}).status_code == 200


@pytest.mark.parametrize("role", ["cw", "admin", "analyst"])
def test_manager_only_actions_are_refused(app, world, role):
    client = as_role(app, role)
    expected = 403
    assert post(client, f"/approvals/{world['other']}", {"decision": "approve",
                                                          "closure_reason": "reintegrated"}).status_code == expected
    assert post(client, f"/children/{world['mine']}/reassign", {"caseworker": "w.cw2"}).status_code == expected
    assert post(client, f"/children/{world['mine']}/restricted").status_code == expected
    # Admins list and revoke devices but do not enrol them: a token reads a caseload.
    assert post(client, "/devices", {"caseworker": "w.cw", "label": "Phone"}).status_code == expected
    if role != "cw":  # caseworkers act on their own alerts and conflicts
        assert post(client, f"/alerts/{world['alert']}/resolve").status_code == expected
        assert post(client, f"/conflicts/{world['conflict']}", {"field:risk_level": "device"}).status_code == expected
    with app.app_context():
        assert db.session.get(Child, world["other"]).stage == "closure_pending"
        assert db.session.get(Child, world["mine"]).caseworker_id == world["cw_id"]
        assert db.session.get(Alert, world["alert"]).status == "open"


@pytest.mark.parametrize("role", ["manager", "cw", "analyst"])
def test_admin_only_actions_are_refused(app, world, role):
    client = as_role(app, role)
    assert post(client, "/users", {"username": "w.sneaky", "role": "admin"}).status_code == 403
    assert post(client, f"/users/{world['cw_id']}/disable").status_code == 403
    assert post(client, f"/users/{world['cw_id']}/password").status_code == 403
    with app.app_context():
        assert db.session.get(User, world["cw_id"]).active is True
        assert not db.session.execute(db.select(User).where(User.username == "w.sneaky")).first()
