"""Agencies and referrals on the web: managers keep the agency list; on the child's page the "Refer"
form proposes a referral behind the consent gate, buttons take its steps, and managers see the open
ones on /referrals."""

import uuid

import pytest

from models import Actor, AuditEvent, db, utcnow
from models.agencies import Agency, save_agency
from models.records import create_record
from models.referrals import Referral
from tests.factories import make_child, make_user
from tests.web_client import post, sign_in, text


@pytest.fixture
def world(app):
    with app.app_context():
        cw = make_user("caseworker", username="cw.w")
        make_user("manager", username="boss.w")
        consented, bare = make_child(cw), make_child(cw)
        create_record("consent", {"child_id": consented.id, "purpose": "referral", "given_by": "child",
                                  "given_on": utcnow().date()}, Actor(user=cw, source="web"))
        agency = save_agency({"name": "Kitgum Health Centre IV", "kind": "health_centre", "district": "Kitgum"})
        db.session.commit()
        return {"consented": str(consented.id), "bare": str(bare.id), "agency": str(agency.id)}


def signed_in(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def test_a_manager_adds_and_changes_an_agency_and_a_bad_form_keeps_what_was_typed(app, world):
    boss = signed_in(app, "boss.w")
    bad = post(boss, "/agencies", {"name": "Pader Youth Skills", "kind": "", "contact": "Ms. Example"})
    assert bad.status_code == 422 and "Choose one of" in text(bad) and "Pader Youth Skills" in text(bad)
    added = post(boss, "/agencies", {"name": "Pader Youth Skills", "kind": "vocational_centre", "district": "Pader"})
    assert added.status_code == 302
    assert "Pader Youth Skills" in text(boss.get("/agencies"))
    changed = post(boss, f"/agencies/{world['agency']}", {"name": "Kitgum HC IV", "kind": "health_centre"})
    assert changed.status_code == 302
    with app.app_context():
        agency = db.session.get(Agency, uuid.UUID(world["agency"]))
        assert agency.name == "Kitgum HC IV" and not agency.active  # the box was left unticked
    assert signed_in(app, "cw.w").get("/agencies").status_code == 403


def test_refer_from_the_child_page_and_take_every_step(app, world):
    cw = signed_in(app, "cw.w")
    page = text(cw.get(f"/children/{world['consented']}"))
    assert "Refer" in page and "Kitgum Health Centre IV" in page and "override" not in page.lower()
    created = post(cw, f"/children/{world['consented']}/referrals",
                   {"service_type": "medical", "agency_id": world["agency"], "reason": "Check-up"})
    assert created.status_code == 302
    with app.app_context():
        referral = db.session.execute(db.select(Referral)).scalar_one()
    for status in ("sent", "accepted", "closed_without_service"):
        assert post(cw, f"/referrals/{referral.id}/steps", {"status": status}).status_code == 302
    refused = post(cw, f"/referrals/{referral.id}/steps", {"status": "completed"})
    assert refused.status_code == 422 and "cannot become completed" in text(refused)
    page = text(cw.get(f"/children/{world['consented']}"))
    assert "closed without service" in page


def test_the_web_refuses_a_referral_without_consent_and_a_manager_overrides_it(app, world):
    cw = signed_in(app, "cw.w")
    refused = post(cw, f"/children/{world['bare']}/referrals",
                   {"service_type": "medical", "agency_id": world["agency"], "reason": "Malaria follow-up"})
    assert refused.status_code == 422 and "no &#39;referral&#39; consent" in text(refused)
    assert "Malaria follow-up" in text(refused)  # what was typed is kept
    boss = signed_in(app, "boss.w")
    overridden = post(boss, f"/children/{world['bare']}/referrals", {
        "service_type": "medical", "agency_id": world["agency"], "override_reason": "Urgent care, caregiver away"})
    assert overridden.status_code == 302
    page = text(boss.get(f"/children/{world['bare']}"))
    assert "consent overridden" in page and "Urgent care, caregiver away" in page
    assert "consent overridden" in text(cw.get(f"/children/{world['bare']}"))
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).where(
            AuditEvent.action == "consent.override")).scalar() == 1


def test_managers_see_the_open_referrals_and_the_read_is_audited(app, world):
    cw = signed_in(app, "cw.w")
    post(cw, f"/children/{world['consented']}/referrals", {"service_type": "education", "provider_name": "St. Example"})
    boss = signed_in(app, "boss.w")
    page = text(boss.get("/referrals"))
    assert "1 open" in page and "outside provider" in page
    assert cw.get("/referrals").status_code == 403
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "referral.read")).scalar_one()
        assert event.details["children"] == 1


def test_an_unreadable_agency_in_the_form_is_a_field_error_not_a_404(app, world):
    cw = signed_in(app, "cw.w")
    response = post(cw, f"/children/{world['consented']}/referrals", {"service_type": "medical", "agency_id": "nope"})
    assert response.status_code == 422 and "No active agency with this id." in text(response)


def test_the_reports_page_shows_referrals_by_service_and_outcome(app, world):
    page = text(signed_in(app, "boss.w").get("/reports"))
    assert "Referrals by service and outcome" in page and "Closed without service" in page


def test_the_indicators_export_carries_the_referral_table_as_shown(app, world):
    body = text(signed_in(app, "boss.w").get("/reports/indicators.csv"))
    assert "referrals_by_outcome,Vocational training,Closed without service,0" in body
