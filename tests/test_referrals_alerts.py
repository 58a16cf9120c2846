"""A referral sent and not answered within REFERRAL_RESPONSE_DAYS raises ``referral_overdue`` in the
scan, to the caseworker and every manager, once; the receiver's answer resolves it."""

from datetime import date, timedelta

from config import RULE_DEFAULTS
from models import Actor, Alert, db
from models.agencies import save_agency
from models.alerting import REFERRAL_RULE, scan
from models.records import create_record
from models.referrals import advance_referral, propose_referral
from tests.factories import make_child, make_user

SENT = date(2025, 3, 1)
DAYS = RULE_DEFAULTS["REFERRAL_RESPONSE_DAYS"]


def sent_referral(cw, boss):
    child = make_child(cw)
    create_record("consent", {"child_id": child.id, "purpose": "referral", "given_by": "caregiver",
                              "given_on": SENT}, Actor(user=cw, source="api"))
    agency = save_agency({"name": "Lira Vocational Institute", "kind": "vocational_centre"})
    referral = propose_referral(child, {"service_type": "vocational_training", "agency_id": agency.id}, cw, today=SENT)
    advance_referral(referral, "sent", cw, today=SENT)
    db.session.commit()
    return child, referral


def overdue_alerts():
    return db.session.execute(db.select(Alert).where(Alert.rule == REFERRAL_RULE)).scalars().all()


def test_an_unanswered_referral_alerts_the_caseworker_and_managers_once_and_the_answer_resolves_it(ctx):
    cw, boss = make_user("caseworker", username="cw.o"), make_user("manager", username="boss.o")
    child, referral = sent_referral(cw, boss)
    scan(SENT + timedelta(days=DAYS - 1), RULE_DEFAULTS)
    assert overdue_alerts() == []
    scan(SENT + timedelta(days=DAYS), RULE_DEFAULTS)
    scan(SENT + timedelta(days=DAYS + 1), RULE_DEFAULTS)  # a later pass writes nothing new
    db.session.commit()
    alerts = overdue_alerts()
    assert sorted(a.recipient_id for a in alerts) == sorted([cw.id, boss.id])
    assert {(a.severity, a.due_on, a.child_id, a.status) for a in alerts} == {
        ("warning", SENT + timedelta(days=DAYS), child.id, "open")}
    advance_referral(referral, "accepted", boss, today=SENT + timedelta(days=DAYS + 2))
    db.session.commit()
    assert {a.status for a in overdue_alerts()} == {"resolved"}


def test_an_answered_referral_raises_nothing(ctx):
    cw, boss = make_user("caseworker", username="cw.p"), make_user("manager", username="boss.p")
    _, referral = sent_referral(cw, boss)
    advance_referral(referral, "declined", boss, today=SENT + timedelta(days=1))
    db.session.commit()
    scan(SENT + timedelta(days=DAYS + 5), RULE_DEFAULTS)
    assert overdue_alerts() == []
