"""One fictional child's journey from identification to closure, a day at a time with an injected
clock: after each day's work the planner runs (as the API does after a commit) and then the daily scan.
Every follow-up and every alert that appears, changes or resolves is logged by day, and the whole log
is compared with the one the rules of DESIGN §2 call for, so nothing unexpected can slip in."""

from datetime import date, timedelta

from config import RULE_DEFAULTS
from models import Actor, Alert, Followup, alerting, db
from models.planning import after_changes
from models.records import create_record, transition, update_record
from tests.factories import make_child, make_user

D = date.fromisoformat
START, END = D("2025-03-01"), D("2027-01-10")


def journey(cw, manager):
    """Day -> what the caseworker or manager does that day."""
    field = Actor(user=cw, source="api")
    boss = Actor(user=manager, source="api")
    state = {}

    def child():
        return state["child"]

    def move(to_stage, actor=field, **kw):
        return lambda day: transition(child(), to_stage, actor, occurred_on=day, today=day, **kw)

    def pending(kind):
        return db.session.execute(db.select(Followup).where(
            Followup.child_id == child().id, Followup.kind == kind, Followup.status == "scheduled")).scalar_one()

    def visit(**outcome):
        def act(day):
            fields = {"status": "done", "completed_on": day, "seen": True, **outcome}
            if fields["status"] == "missed":
                fields = {"status": "missed"}
            update_record(pending("visit"), fields, field)
        return act

    def review(day):
        update_record(pending("plan_review"), {"status": "done", "completed_on": day}, field)

    def identify(day):
        state["child"] = make_child(cw, identified_on=day)

    def assess(day):
        move("assessed")(day)
        create_record("assessment", {"child_id": child().id, "kind": "psychosocial", "assessed_on": day,
                                     "risk_level": "high"}, field)
        update_record(child(), {"risk_level": "high"}, field)

    def resolve_danger(day):
        alert = db.session.execute(db.select(Alert).where(Alert.rule == "danger_reported")).scalar_one()
        update_record(alert, {"status": "resolved", "resolved_by_id": manager.id}, boss)

    return state, {
        D("2025-03-01"): [identify],
        D("2025-03-03"): [move("reception")],
        D("2025-05-20"): [move("registered")],
        D("2025-06-02"): [assess],
        D("2025-06-10"): [move("tracing")],
        D("2025-07-01"): [move("reunified", boss, reason="Fictional: family came without a tracing request.")],
        D("2025-07-03"): [move("follow_up")],
        D("2025-07-15"): [visit(risk_level="high")],
        D("2025-07-22"): [visit(risk_level="medium")],
        D("2025-08-23"): [visit(status="missed")],  # the 08-21 visit, recorded late as missed
        D("2025-08-28"): [visit(seen=False, not_seen_reason="at_school")],
        D("2025-09-04"): [visit(risk_level="low")],
        D("2025-10-09"): [review],
        D("2025-12-03"): [visit(risk_level="high", concerns=["re_recruitment"])],
        D("2025-12-05"): [resolve_danger],
        D("2025-12-10"): [visit(risk_level="medium")],
        D("2026-01-07"): [review],
        D("2026-01-09"): [visit(risk_level="low")],
        D("2026-04-07"): [review],
        D("2026-04-09"): [visit(risk_level="low")],
        # An early closure proposal (307 days after reunification) needs a reason; the manager rejects it.
        D("2026-05-04"): [move("closure_pending", reason="Fictional: doing well at school.")],
        D("2026-05-11"): [move("follow_up", boss)],
        D("2026-07-16"): [visit(risk_level="medium")],
        D("2026-08-09"): [review],
        D("2026-08-15"): [visit(risk_level="low")],
        D("2026-11-07"): [review],
        D("2026-11-13"): [visit(status="missed")],
        D("2026-11-20"): [visit(risk_level="low")],
        D("2026-12-15"): [move("closure_pending")],
        D("2027-01-05"): [move("closed", boss, closure_reason="reintegrated")],
    }


# (day, event, what, due date, recipient). Follow-up events: plan (the planner created it), done,
# missed, cancelled. Alert events: + (raised), - (resolved).
EXPECTED = [
    ("2025-03-03", "plan", "reception_review", "2025-05-26", None),
    ("2025-05-12", "+", "reception_warn", "2025-05-26", "cw"),
    ("2025-05-20", "done", "reception_review", "2025-05-26", None),
    ("2025-05-20", "plan", "assessment_due", "2025-05-27", None),
    ("2025-05-20", "-", "reception_warn", "2025-05-26", "cw"),
    ("2025-05-25", "+", "assessment_due_soon", "2025-05-27", "cw"),
    ("2025-05-27", "-", "assessment_due_soon", "2025-05-27", "cw"),
    ("2025-05-27", "+", "assessment_due", "2025-05-27", "cw"),
    ("2025-05-28", "-", "assessment_due", "2025-05-27", "cw"),
    ("2025-05-28", "+", "assessment_overdue", "2025-05-27", "cw"),
    ("2025-06-02", "done", "assessment_due", "2025-05-27", None),
    ("2025-06-02", "-", "assessment_overdue", "2025-05-27", "cw"),
    ("2025-07-01", "plan", "visit", "2025-07-15", None),
    ("2025-07-03", "plan", "plan_review", "2025-10-01", None),
    ("2025-07-13", "+", "visit_due_soon", "2025-07-15", "cw"),
    ("2025-07-15", "done", "visit", "2025-07-15", None),
    ("2025-07-15", "-", "visit_due_soon", "2025-07-15", "cw"),
    ("2025-07-15", "plan", "visit", "2025-07-22", None),  # risk high: 7 days
    ("2025-07-20", "+", "visit_due_soon", "2025-07-22", "cw"),
    ("2025-07-22", "done", "visit", "2025-07-22", None),
    ("2025-07-22", "-", "visit_due_soon", "2025-07-22", "cw"),
    ("2025-07-22", "plan", "visit", "2025-08-21", None),  # risk medium: 30 days
    ("2025-08-19", "+", "visit_due_soon", "2025-08-21", "cw"),
    ("2025-08-21", "-", "visit_due_soon", "2025-08-21", "cw"),
    ("2025-08-21", "+", "visit_due", "2025-08-21", "cw"),
    ("2025-08-22", "-", "visit_due", "2025-08-21", "cw"),
    ("2025-08-22", "+", "visit_overdue", "2025-08-21", "cw"),
    ("2025-08-23", "missed", "visit", "2025-08-21", None),
    ("2025-08-23", "-", "visit_overdue", "2025-08-21", "cw"),
    ("2025-08-23", "plan", "visit", "2025-08-28", None),  # retried within the high-risk cadence
    ("2025-08-26", "+", "visit_due_soon", "2025-08-28", "cw"),
    ("2025-08-28", "done", "visit", "2025-08-28", None),  # done, but the child was not seen
    ("2025-08-28", "-", "visit_due_soon", "2025-08-28", "cw"),
    ("2025-08-28", "plan", "visit", "2025-09-04", None),
    ("2025-08-28", "+", "missed_in_row", "2025-08-28", "cw"),
    ("2025-08-28", "+", "missed_in_row", "2025-08-28", "manager"),
    ("2025-09-02", "+", "visit_due_soon", "2025-09-04", "cw"),
    ("2025-09-04", "done", "visit", "2025-09-04", None),
    ("2025-09-04", "-", "visit_due_soon", "2025-09-04", "cw"),
    ("2025-09-04", "-", "missed_in_row", "2025-08-28", "cw"),
    ("2025-09-04", "-", "missed_in_row", "2025-08-28", "manager"),
    ("2025-09-04", "plan", "visit", "2025-12-03", None),  # risk low: 90 days
    ("2025-09-29", "+", "plan_review_due_soon", "2025-10-01", "cw"),
    ("2025-10-01", "-", "plan_review_due_soon", "2025-10-01", "cw"),
    ("2025-10-01", "+", "plan_review_due", "2025-10-01", "cw"),
    ("2025-10-02", "-", "plan_review_due", "2025-10-01", "cw"),
    ("2025-10-02", "+", "plan_review_overdue", "2025-10-01", "cw"),
    ("2025-10-08", "+", "plan_review_escalated", "2025-10-01", "manager"),
    ("2025-10-09", "done", "plan_review", "2025-10-01", None),
    ("2025-10-09", "-", "plan_review_overdue", "2025-10-01", "cw"),
    ("2025-10-09", "-", "plan_review_escalated", "2025-10-01", "manager"),
    ("2025-10-09", "plan", "plan_review", "2026-01-07", None),
    ("2025-12-01", "+", "visit_due_soon", "2025-12-03", "cw"),
    ("2025-12-03", "done", "visit", "2025-12-03", None),
    ("2025-12-03", "-", "visit_due_soon", "2025-12-03", "cw"),
    ("2025-12-03", "+", "danger_reported", "2025-12-03", "manager"),  # at once, not at the scan
    ("2025-12-03", "plan", "visit", "2025-12-10", None),
    ("2025-12-05", "-", "danger_reported", "2025-12-03", "manager"),
    ("2025-12-08", "+", "visit_due_soon", "2025-12-10", "cw"),
    ("2025-12-10", "done", "visit", "2025-12-10", None),
    ("2025-12-10", "-", "visit_due_soon", "2025-12-10", "cw"),
    ("2025-12-10", "plan", "visit", "2026-01-09", None),
    ("2026-01-05", "+", "plan_review_due_soon", "2026-01-07", "cw"),
    ("2026-01-07", "done", "plan_review", "2026-01-07", None),
    ("2026-01-07", "-", "plan_review_due_soon", "2026-01-07", "cw"),
    ("2026-01-07", "plan", "plan_review", "2026-04-07", None),
    ("2026-01-07", "+", "visit_due_soon", "2026-01-09", "cw"),
    ("2026-01-09", "done", "visit", "2026-01-09", None),
    ("2026-01-09", "-", "visit_due_soon", "2026-01-09", "cw"),
    ("2026-01-09", "plan", "visit", "2026-04-09", None),
    ("2026-04-05", "+", "plan_review_due_soon", "2026-04-07", "cw"),
    ("2026-04-07", "done", "plan_review", "2026-04-07", None),
    ("2026-04-07", "-", "plan_review_due_soon", "2026-04-07", "cw"),
    ("2026-04-07", "plan", "plan_review", "2026-07-06", None),
    ("2026-04-07", "+", "visit_due_soon", "2026-04-09", "cw"),
    ("2026-04-09", "done", "visit", "2026-04-09", None),
    ("2026-04-09", "-", "visit_due_soon", "2026-04-09", "cw"),
    ("2026-04-09", "plan", "visit", "2026-07-08", None),
    ("2026-05-04", "cancelled", "plan_review", "2026-07-06", None),  # no reviews while closure is pending
    ("2026-05-11", "plan", "plan_review", "2026-08-09", None),  # back in follow-up: 90 days from then
    ("2026-07-01", "+", "closure_eligible", "2026-07-01", "cw"),  # 365 days after reunification
    ("2026-07-06", "+", "visit_due_soon", "2026-07-08", "cw"),
    ("2026-07-08", "-", "visit_due_soon", "2026-07-08", "cw"),
    ("2026-07-08", "+", "visit_due", "2026-07-08", "cw"),
    ("2026-07-09", "-", "visit_due", "2026-07-08", "cw"),
    ("2026-07-09", "+", "visit_overdue", "2026-07-08", "cw"),
    ("2026-07-15", "+", "visit_escalated", "2026-07-08", "manager"),
    ("2026-07-16", "done", "visit", "2026-07-08", None),
    ("2026-07-16", "-", "visit_overdue", "2026-07-08", "cw"),
    ("2026-07-16", "-", "visit_escalated", "2026-07-08", "manager"),
    ("2026-07-16", "plan", "visit", "2026-08-15", None),  # counted from the day it was done
    ("2026-08-07", "+", "plan_review_due_soon", "2026-08-09", "cw"),
    ("2026-08-09", "done", "plan_review", "2026-08-09", None),
    ("2026-08-09", "-", "plan_review_due_soon", "2026-08-09", "cw"),
    ("2026-08-09", "plan", "plan_review", "2026-11-07", None),
    ("2026-08-13", "+", "visit_due_soon", "2026-08-15", "cw"),
    ("2026-08-15", "done", "visit", "2026-08-15", None),
    ("2026-08-15", "-", "visit_due_soon", "2026-08-15", "cw"),
    ("2026-08-15", "plan", "visit", "2026-11-13", None),
    ("2026-11-05", "+", "plan_review_due_soon", "2026-11-07", "cw"),
    ("2026-11-07", "done", "plan_review", "2026-11-07", None),
    ("2026-11-07", "-", "plan_review_due_soon", "2026-11-07", "cw"),
    ("2026-11-07", "plan", "plan_review", "2027-02-05", None),
    ("2026-11-11", "+", "visit_due_soon", "2026-11-13", "cw"),
    ("2026-11-13", "missed", "visit", "2026-11-13", None),
    ("2026-11-13", "-", "visit_due_soon", "2026-11-13", "cw"),
    ("2026-11-13", "plan", "visit", "2026-11-20", None),
    ("2026-11-18", "+", "visit_due_soon", "2026-11-20", "cw"),
    ("2026-11-20", "done", "visit", "2026-11-20", None),
    ("2026-11-20", "-", "visit_due_soon", "2026-11-20", "cw"),
    ("2026-11-20", "plan", "visit", "2027-02-18", None),
    ("2026-12-15", "cancelled", "plan_review", "2027-02-05", None),
    ("2026-12-15", "-", "closure_eligible", "2026-07-01", "cw"),
    ("2027-01-05", "cancelled", "visit", "2027-02-18", None),
]


def snapshot(names):
    followups = {f.id: (f.kind, f.due_on, f.status, f.planned_by_rule)
                 for f in db.session.execute(db.select(Followup)).scalars()}
    alerts = {a.id: (a.rule, a.due_on, names[a.recipient_id], a.status)
              for a in db.session.execute(db.select(Alert)).scalars()}
    return followups, alerts


def events(day, before, after):
    out = []
    (f0, a0), (f1, a1) = before, after
    for fid, (kind, due, status, rule) in f1.items():
        old = f0.get(fid)
        if old is None:
            out.append((day, "plan" if rule else "add", kind, due, None))
            if status != "scheduled":
                out.append((day, status, kind, due, None))
        elif old[2] != status:
            out.append((day, status, kind, due, None))
        elif old[1] != due:
            out.append((day, "move", kind, due, None))
    for aid, (rule, due, who, status) in a1.items():
        old = a0.get(aid)
        if old is None:
            out.append((day, "+", rule, due, who))
        if status == "resolved" and (old is None or old[3] != "resolved"):
            out.append((day, "-", rule, due, who))
    return [(d.isoformat(), e, w, due.isoformat(), who) for d, e, w, due, who in out]


def test_eighteen_months_of_follow_up(ctx):
    cw = make_user("caseworker")
    manager = make_user("manager")
    names = {cw.id: "cw", manager.id: "manager"}
    state, actions = journey(cw, manager)
    db.session.commit()
    log, before = [], snapshot(names)
    day = START
    while day <= END:
        for act in actions.get(day, []):
            act(day)
            db.session.commit()
            after_changes({state["child"].id}, today=day, rules=RULE_DEFAULTS)
            db.session.commit()
        alerting.scan(day, RULE_DEFAULTS)
        db.session.commit()
        after = snapshot(names)
        log.extend(sorted(events(day, before, after)))
        before = after
        day += timedelta(days=1)
    assert log == sorted(EXPECTED)
    # The visit cadence covered eighteen months of follow-up after reunification.
    visits = [f for f in db.session.execute(db.select(Followup).where(Followup.kind == "visit")).scalars()]
    assert min(f.due_on for f in visits) == D("2025-07-15")
    assert max(f.due_on for f in visits if f.status != "cancelled") == D("2026-11-20")
