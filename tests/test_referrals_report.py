"""The donor report counts referrals proposed in the period by service type and outcome, with small
cells suppressed like every other figure; the journey of issue 13's "done means" end to end."""

from datetime import date

from models import Actor, db
from models.agencies import save_agency
from models.records import create_record
from models.referrals import advance_referral, propose_referral
from models.reporting import build_report
from tests.factories import make_child, make_user

DAY = date(2025, 5, 5)


def refer_many(boss, cw, agency, n, path):
    for _ in range(n):
        child = make_child(cw)
        create_record("consent", {"child_id": child.id, "purpose": "referral", "given_by": "child",
                                  "given_on": DAY}, Actor(user=cw, source="api"))
        referral = propose_referral(child, {"service_type": "vocational_training", "agency_id": agency.id}, boss,
                                    today=DAY)
        for status in path:
            advance_referral(referral, status, boss, today=DAY)
    db.session.commit()


def test_referrals_are_counted_by_service_and_outcome_with_small_cells_hidden(ctx):
    boss, cw = make_user("manager", username="boss.q"), make_user("caseworker", username="cw.q")
    agency = save_agency({"name": "Amuru Vocational Centre", "kind": "vocational_centre"})
    refer_many(boss, cw, agency, 6, ["sent", "accepted", "completed"])
    refer_many(boss, cw, agency, 5, ["sent", "declined"])
    refer_many(boss, cw, agency, 1, ["sent"])
    report = build_report(date(2025, 5, 1), date(2025, 5, 31))
    rows = {row.key: row.cells for row in report.referrals}
    vocational = rows["vocational_training"]
    assert vocational["total"] == 12 and vocational["completed"] == 6
    # The one still waiting is hidden, and so is the next smallest cell: else 12 - 6 - 5 would tell it.
    assert vocational["sent"] == "<5" and vocational["declined"] == "x"
    assert rows["education"]["total"] == 0
    assert build_report(date(2025, 6, 1), date(2025, 6, 30)).referrals[0].cells["total"] == 0
