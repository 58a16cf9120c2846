"""Consent at 18 (issue 8 finding 7): a child of an open case who turns 18 raises one alert to the
caseworker to re-seek consent from the child as an adult."""

from datetime import date

from config import RULE_DEFAULTS
from models import Actor, Alert, alerting, db
from models.planning import after_changes
from models.records import create_record, update_record
from tests.factories import make_child, make_user, walk


def consent_alerts():
    return db.session.execute(db.select(Alert).where(Alert.rule == "consent_adult")).scalars().all()


def test_turning_18_raises_one_alert_to_the_caseworker(ctx):
    cw, manager = make_user("caseworker"), make_user("manager")
    turning = make_child(cw, date_of_birth=date(2008, 9, 30))  # birth year 2008 derived from it
    next_year = make_child(cw, birth_year=2009)  # 17 this year
    adult_consented = make_child(cw, birth_year=2007)
    create_record("consent", {"child_id": adult_consented.id, "purpose": "services", "given_by": "child",
                              "given_on": date(2025, 3, 1)}, Actor(user=cw, source="api"))
    closed = make_child(cw, birth_year=2006)
    walk(closed, ["registered", "assessed", "reunified", "follow_up", "closure_pending", "closed"],
         Actor(user=manager, source="api"))
    child_consent_before_18 = make_child(cw, birth_year=2008)
    create_record("consent", {"child_id": child_consent_before_18.id, "purpose": "services", "given_by": "child",
                              "given_on": date(2025, 6, 1)}, Actor(user=cw, source="api"))
    db.session.commit()

    first = alerting.scan(date(2026, 3, 1), RULE_DEFAULTS)
    db.session.commit()
    assert first.summary().get("consent_adult") == 2
    alerts = {a.child_id: a for a in consent_alerts()}
    assert set(alerts) == {turning.id, child_consent_before_18.id}
    alert = alerts[turning.id]
    assert (alert.recipient_id, alert.due_on, alert.severity, alert.status) == (cw.id, date(2026, 1, 1), "info", "open")
    assert alert.key == alerting.alert_key(turning.id, "consent_adult", date(2026, 1, 1), cw.id)

    # Raised once: later scans add nothing for these children, even after the alert is resolved; the
    # next year it is the turn of the child born in 2009.
    again = alerting.scan(date(2026, 3, 2), RULE_DEFAULTS)
    assert "consent_adult" not in again.summary()
    update_record(alert, {"status": "resolved"}, Actor(user=None, source="system"))
    db.session.commit()
    next_scan = alerting.scan(date(2027, 1, 5), RULE_DEFAULTS)
    assert [(a.child_id, a.due_on) for a in next_scan.created if a.rule == "consent_adult"] == [
        (next_year.id, date(2027, 1, 1))]
    assert len(consent_alerts()) == 3


def test_the_alert_resolves_when_the_child_consents_as_an_adult(ctx):
    cw = make_user("caseworker")
    child = make_child(cw, birth_year=2008)
    db.session.commit()
    alerting.scan(date(2026, 3, 1), RULE_DEFAULTS)
    db.session.commit()
    (alert,) = consent_alerts()
    create_record("consent", {"child_id": child.id, "purpose": "services", "given_by": "caregiver",
                              "given_on": date(2026, 3, 2)}, Actor(user=cw, source="api"))
    after_changes({child.id}, today=date(2026, 3, 2), rules=RULE_DEFAULTS)
    assert alert.status == "open"  # a caregiver's consent is not the adult's own
    create_record("consent", {"child_id": child.id, "purpose": "services", "given_by": "child",
                              "given_on": date(2026, 3, 3)}, Actor(user=cw, source="api"))
    after_changes({child.id}, today=date(2026, 3, 3), rules=RULE_DEFAULTS)
    db.session.commit()
    db.session.refresh(alert)
    assert alert.status == "resolved"
