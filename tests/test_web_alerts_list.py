"""The alerts inbox tells the truth: an acknowledged urgent alert stays in the default list and in the
dashboard's urgent count until it is resolved; an overdue visit is one row at its level, not two;
many alerts are acknowledged at once; names and villages stand beside the case code for those who may
see them, audited as a read."""

from datetime import timedelta

import pytest

from models import Actor, Alert, AuditEvent, AuditEventChild, Child, db, utcnow
from models.records import create_record
from tests.factories import make_child, make_user
from tests.web_client import post, sign_in, text


@pytest.fixture
def inbox(app):
    """A caseworker's child with an urgent danger alert, and a visit overdue (to the caseworker) and
    escalated (to the manager)."""
    with app.app_context():
        manager = make_user("manager", username="al.manager")
        cw = make_user("caseworker", username="al.cw")
        boss = Actor(user=manager, source="api")
        child = make_child(cw, given_name="Akello", family_name="Fictional", village="Pajimo")
        today = utcnow().date()
        visit = create_record("followup", {"child_id": child.id, "kind": "visit", "status": "scheduled",
                                           "due_on": today - timedelta(days=9)}, boss)

        def alert(rule, severity, recipient, followup=None):
            return create_record("alert", {
                "key": f"{child.id.hex}:{rule}:{recipient.id.hex}", "rule": rule, "severity": severity,
                "child_id": child.id, "recipient_id": recipient.id, "due_on": today,
                "followup_id": followup.id if followup else None}, boss).id

        ids = {"danger": alert("danger_reported", "urgent", manager),
               "overdue": alert("visit_overdue", "warning", cw, visit),
               "escalated": alert("visit_escalated", "warning", manager, visit)}
        db.session.commit()
        return {**ids, "child": child.id, "code": child.case_code}


def _client(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _rows(page: str) -> int:
    return page.count('<tr class="sev-')


def test_an_overdue_visit_is_one_row_at_its_level(app, inbox):
    manager = _client(app, "al.manager")
    page = text(manager.get("/alerts"))
    assert _rows(page) == 2  # the danger alert, and the visit once
    assert "visit overdue, escalated" in page and ">visit overdue<" not in page
    caseworker = _client(app, "al.cw")
    page = text(caseworker.get("/alerts"))
    assert _rows(page) == 1 and "visit overdue" in page  # the caseworker sees their own level


def test_acknowledged_urgent_stays_in_the_list_and_the_count_until_resolved(app, inbox):
    manager = _client(app, "al.manager")
    assert 'href="/alerts?severity=urgent">1<' in text(manager.get("/"))
    assert post(manager, f"/alerts/{inbox['danger']}/acknowledge").status_code == 302
    page = text(manager.get("/alerts"))
    assert "danger reported at a visit" in page and "acknowledged" in page
    assert 'href="/alerts?severity=urgent">1<' in text(manager.get("/"))
    post(manager, f"/alerts/{inbox['danger']}/resolve")
    assert "danger reported" not in text(manager.get("/alerts"))
    assert 'href="/alerts?severity=urgent">0<' in text(manager.get("/"))
    assert "danger reported" in text(manager.get("/alerts?status=resolved"))


def test_acting_on_the_row_settles_the_follow_ups_alerts_together(app, inbox):
    manager = _client(app, "al.manager")
    assert post(manager, f"/alerts/{inbox['escalated']}/resolve").status_code == 302
    with app.app_context():
        assert {db.session.get(Alert, inbox[k]).status for k in ("overdue", "escalated")} == {"resolved"}
        assert db.session.get(Alert, inbox["danger"]).status == "open"


def test_bulk_acknowledge(app, inbox):
    manager = _client(app, "al.manager")
    response = post(manager, "/alerts/acknowledge", {"alert": [str(inbox["danger"]), str(inbox["escalated"])],
                                                      "back": "/alerts"}, follow_redirects=True)
    assert "3 alerts acknowledged." in text(response)
    with app.app_context():
        acknowledged = db.session.execute(db.select(AuditEvent.target).where(
            AuditEvent.action == "alert.acknowledged")).scalars().all()
        assert sorted(acknowledged) == sorted(str(inbox[k]) for k in ("danger", "overdue", "escalated"))
        assert db.session.get(Alert, inbox["danger"]).status == "acknowledged"
    assert "Tick the alerts to acknowledge first." in text(post(manager, "/alerts/acknowledge",
                                                                follow_redirects=True))
    # someone else's alert cannot be ticked in: out of scope is ignored
    caseworker = _client(app, "al.cw")
    with app.app_context():
        db.session.get(Alert, inbox["danger"]).status = "open"
        db.session.commit()
    post(caseworker, "/alerts/acknowledge", {"alert": [str(inbox["danger"])]})
    with app.app_context():
        assert db.session.get(Alert, inbox["danger"]).status == "open"


def test_names_and_villages_beside_the_case_code_are_audited(app, inbox):
    manager = _client(app, "al.manager")
    page = text(manager.get("/alerts"))
    assert inbox["code"] in page and "Akello Fictional" in page and "Pajimo" in page
    with app.app_context():
        reads = db.session.execute(
            db.select(AuditEvent).join(AuditEventChild, AuditEventChild.event_id == AuditEvent.id)
            .where(AuditEvent.action == "child.list", AuditEventChild.child_id == inbox["child"])).scalars().all()
        assert reads and reads[-1].details["page"] == "alerts"


def test_a_danger_report_on_a_visit_is_never_folded_into_its_overdue_row(app, inbox):
    with app.app_context():
        danger = db.session.get(Alert, inbox["danger"])
        danger.followup_id = db.session.get(Alert, inbox["overdue"]).followup_id
        db.session.commit()
    page = text(_client(app, "al.manager").get("/alerts"))
    assert _rows(page) == 2 and "danger reported at a visit" in page and "visit overdue, escalated" in page
    assert "1–2 of 2" in page


def test_a_note_on_resolve_is_kept_and_shown_to_who_may_see_the_child(app, inbox):
    manager = _client(app, "al.manager")
    too_long = post(manager, f"/alerts/{inbox['escalated']}/resolve", {"note": "x" * 1001, "back": "/alerts"},
                    follow_redirects=True)
    assert "A note can be at most 1000 characters." in text(too_long)
    with app.app_context():
        assert db.session.get(Alert, inbox["escalated"]).status == "open"  # nothing half-written
    note = "Met the family at the parish office; the visit is booked for Friday."
    assert post(manager, f"/alerts/{inbox['escalated']}/resolve", {"note": note}).status_code == 302
    with app.app_context():  # one matter: the caseworker's overdue alert carries the same note
        assert {db.session.get(Alert, inbox[k]).resolution_note for k in ("overdue", "escalated")} == {note}
    assert note in text(manager.get("/alerts?status=resolved"))
    caseworker = _client(app, "al.cw")
    assert note in text(caseworker.get("/alerts?status=resolved"))
    # Reassigned, the child is no longer the caseworker's: their alert stays in their list, without the note.
    with app.app_context():
        other = make_user("caseworker", username="al.cw2")
        db.session.get(Child, inbox["child"]).caseworker_id = other.id
        db.session.commit()
    page = text(caseworker.get("/alerts?status=resolved"))
    assert inbox["code"] in page and note not in page
    # Resolving without a note is still one click.
    assert post(manager, f"/alerts/{inbox['danger']}/resolve").status_code == 302
    with app.app_context():
        alert = db.session.get(Alert, inbox["danger"])
        assert alert.status == "resolved" and alert.resolution_note is None
