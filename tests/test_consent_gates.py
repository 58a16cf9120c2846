"""Consent gates on every path (issue 13): the caregiver's consent lapsing after the year the child
turns 18, overrides listed on the child's page (the reason to managers only), identified reporting
leaving out children without a reporting consent, and the printable referral form for an outside
provider holding only what the consent allows. Every name here is fictional."""

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import true

from models import Actor, AuditEvent, Child, db, utcnow
from models.care import Consent
from models.consent_gates import ConsentRequired, consent_in_force, require_consent
from models.exports import identified_children
from models.indicators import Period
from models.records import create_record, update_record
from models.referrals import Referral, propose_referral
from models.reporting import build_report
from tests.factories import make_child, make_user
from tests.web_client import post, sign_in, text

TODAY = utcnow().date()


def consent(child, purpose, given_by="caregiver", given_on=None):
    return create_record("consent", {"child_id": child.id, "purpose": purpose, "given_by": given_by,
                                     "given_on": given_on or TODAY - timedelta(days=30)}, Actor(None, "api"))


@pytest.mark.parametrize("born_years_ago, given_by, in_force", [
    (16, "caregiver", True),   # a minor: the caregiver's consent counts
    (18, "caregiver", True),   # turns 18 this year: the year the consent_adult alert gives to ask again
    (19, "caregiver", False),  # an adult since last year: the caregiver's consent has lapsed
    (19, "child", True),       # the young person's own consent
])
def test_a_caregivers_consent_lapses_after_the_year_the_child_turns_18(ctx, born_years_ago, given_by, in_force):
    child = make_child(make_user(), birth_year=TODAY.year - born_years_ago)
    consent(child, "referral", given_by=given_by)
    db.session.flush()
    assert consent_in_force(child, "referral", TODAY) is in_force


def test_a_withdrawn_consent_stops_what_it_gated_from_that_day(ctx):
    cw = make_user()
    child = make_child(cw)
    record = consent(child, "tracing")
    withdrawn_on = TODAY - timedelta(days=3)
    update_record(record, {"withdrawn_on": withdrawn_on}, Actor(None, "api"))
    assert require_consent(child, "tracing", cw, None, on=withdrawn_on - timedelta(days=1)) == "consent"
    with pytest.raises(ConsentRequired):
        require_consent(child, "tracing", cw, None, on=withdrawn_on)


def test_identified_reporting_leaves_out_children_without_the_reporting_consent(ctx):
    cw = make_user()
    with_consent, without = make_child(cw, given_name="Akot"), make_child(cw, given_name="Aber")
    consent(with_consent, "reporting", given_on=date(2025, 1, 1))
    withdrawn = make_child(cw)
    update_record(consent(withdrawn, "reporting", given_on=date(2025, 1, 1)), {"withdrawn_on": TODAY},
                  Actor(None, "api"))
    db.session.flush()
    period = Period(date(2025, 1, 1), TODAY)
    counted, _closures, left_out = identified_children(period, scope=true(), on=TODAY)
    assert set(counted) == {with_consent.id} and left_out == 2 and without.id not in counted
    # The aggregates count every child, consent or not.
    identified = next(r for r in build_report(period.start, period.end, suppressed=False).main if r.key == "identified")
    assert identified.cells["total"] == 3


@pytest.fixture
def family(app):
    with app.app_context():
        manager, cw = make_user("manager", username="g.mgr"), make_user("caseworker", username="g.cw")
        make_user("caseworker", username="g.other")
        child = make_child(cw, given_name="Apio", family_name="Fictional-Family", village="Fictional Pabbo",
                           family_contacts="+256 700 111 222 (fictional)", armed_group="Fictional group",
                           birth_year=TODAY.year - 16, sex="female")
        consent(child, "referral")
        outside = propose_referral(child, {"service_type": "vocational_training", "provider_name": "Fictional Tailors",
                                           "reason": "Wants to learn tailoring"}, cw, today=TODAY)
        bare = make_child(cw)
        overridden = propose_referral(bare, {"service_type": "medical", "provider_name": "Fictional Clinic",
                                             "override_reason": "Urgent care, caregiver away (fictional)"},
                                      manager, today=TODAY)
        db.session.commit()
        return {"child": child.id, "outside": outside.id, "bare": bare.id, "overridden": overridden.id}


def test_the_printable_form_holds_only_what_the_consent_allows_and_is_audited(app, family):
    office = app.test_client()
    sign_in(office, "g.cw")
    form = office.get(f"/referrals/{family['outside']}/form")
    assert form.status_code == 200
    page = text(form)
    with app.app_context():
        code = db.session.get(Child, family["child"]).case_code
    assert code in page and "Apio" in page and "Fictional Tailors" in page and "tailoring" in page
    assert "15–17" in page and "g.cw" in page and "@media print" not in page  # the CSS is in records.css
    for never in ("Fictional-Family", "Pabbo", "700 111", "Fictional group"):
        assert never not in page
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "referral.form_printed")).scalar_one()
        assert event.child_id == family["child"] and event.target == str(family["outside"])
    # Another caseworker: the child does not exist for them.
    other = app.test_client()
    sign_in(other, "g.other")
    assert other.get(f"/referrals/{family['outside']}/form").status_code == 404
    # A consent withdrawn since: the form is refused from then on.
    with app.app_context():
        record = db.session.execute(db.select(Consent).where(Consent.child_id == family["child"])).scalar_one()
        update_record(record, {"withdrawn_on": TODAY}, Actor(None, "web"))
        db.session.commit()
    refused = office.get(f"/referrals/{family['outside']}/form")
    assert refused.status_code == 422 and "consent" in text(refused)
    # Proposed on a manager's override: the override was the decision.
    assert office.get(f"/referrals/{family['overridden']}/form").status_code == 200


def test_no_printed_form_for_a_partner_agency(app, family):
    from models.agencies import save_agency

    with app.app_context():
        agency = save_agency({"name": "Fictional Centre", "kind": "vocational_centre"})
        referral = db.session.get(Referral, family["outside"])
        referral.agency_id, referral.provider_name = agency.id, None
        db.session.commit()
    office = app.test_client()
    sign_in(office, "g.mgr")
    response = office.get(f"/referrals/{family['outside']}/form")
    assert response.status_code == 422 and "partner agency" in text(response)


def test_overrides_are_listed_on_the_childs_page_with_the_reason_for_managers_only(app, family):
    manager, caseworker = app.test_client(), app.test_client()
    sign_in(manager, "g.mgr")
    sign_in(caseworker, "g.cw")
    for_manager = text(manager.get(f"/children/{family['bare']}"))
    for_caseworker = text(caseworker.get(f"/children/{family['bare']}"))
    assert "Consent overrides" in for_manager and "Consent overrides" in for_caseworker
    assert "g.mgr" in for_caseworker and "Urgent care, caregiver away" in for_manager
    assert "Urgent care, caregiver away" not in for_caseworker
    # The referral's override reason too stays with managers.
    assert for_caseworker.count("caregiver away") == 0


def test_identified_export_on_the_web_lists_only_consented_children(app, family):
    office = app.test_client()
    sign_in(office, "g.mgr")
    with app.app_context():
        consent(db.session.get(Child, family["child"]), "reporting", given_on=date(2025, 1, 1))
        db.session.commit()
        code = db.session.get(Child, family["child"]).case_code
        other_code = db.session.get(Child, family["bare"]).case_code
    response = post(office, "/reports/cases.csv", {"start": "2025-01-01", "end": TODAY.isoformat()})
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == [code] and other_code not in text(response)
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "export.identified")).scalar_one()
        assert event.details["left_out_without_consent"] == 1


def test_no_odk_form_can_do_a_gated_action():
    """ODK forms write children and their records; none refers, transfers or traces, so OpenRosa needs
    no gate. Adding such an entity to the forms must come with a gate (docs/referrals.md)."""
    from server.openrosa.catalogue import FORM_ENTITIES

    assert not set(FORM_ENTITIES) & {"referral", "transfer", "tracing_request", "tracing_link"}
