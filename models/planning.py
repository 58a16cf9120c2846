"""Follow-up planning and the alerts raised at once (DESIGN §2), run after every path that changes a
child: the JSON API, a sync batch, the web pages.

``after_changes`` is called with the ids of the children a committed unit of work touched. It reads
committed state, creates or re-plans follow-ups and raises urgent alerts, flushes and never commits;
running it twice changes nothing.

The planner owns the follow-ups it created (``Followup.planned_by_rule`` is set) and keeps at most one
*scheduled* follow-up of each kind per child. Each run computes, from the child's stage, transitions
and completed follow-ups, which follow-ups the rules want and when, then creates, moves or retires its
own to match. Because the due dates are always recomputed from the facts, a visit done early, an
outcome corrected offline or a risk level raised later re-plans what follows without special cases.
A follow-up a person scheduled by hand is never touched; while one of a kind is pending, the planner
keeps none of its own of that kind (the person has taken over).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from models.base import db
from models.change_set import ChangeSet, time_ordered_id, written
from models.children import Child
from models.followups import Followup
from models.lifecycle import StageTransition
from models.records import Actor, add_record, change_record
from models.vocab import DANGER_CONCERNS, DANGER_NOT_SEEN_REASONS

SYSTEM = Actor(user=None, source="system")

# Stages in which the child is visited at home (closure is only proposed, so visits go on).
VISIT_STAGES = ("reunified", "follow_up", "closure_pending")
# Follow-ups that wait for the child to leave a stage: done when it moves on along the path.
STAGE_MILESTONES = {"reception_review": "reception", "assessment_due": "registered"}
# When a visit's risk level is unknown and the child has none either: the middle cadence.
DEFAULT_RISK = "medium"


@dataclass(frozen=True)
class Plan:
    kind: str
    rule: str
    due_on: date


def days(n: int) -> timedelta:
    return timedelta(days=n)


def visit_days(risk_level: str | None, rules: dict) -> int:
    return rules[f"VISIT_DAYS_{(risk_level or DEFAULT_RISK).upper()}"]


def was_missed(visit: Followup) -> bool:
    """A visit that did not happen, or happened without seeing the child."""
    return visit.status == "missed" or (visit.status == "done" and visit.seen is False)


def danger_reported(followup: Followup) -> bool:
    return (followup.not_seen_reason in DANGER_NOT_SEEN_REASONS
            or bool(set(followup.concerns or ()) & set(DANGER_CONCERNS)))


def _completed_on(followup: Followup) -> date:
    return followup.completed_on or followup.due_on


def next_visit(child: Child, transitions: list[StageTransition], followups: list[Followup],
               rules: dict) -> Plan:
    """The one visit the rules want now for a child in a visit stage."""
    reunified_on = max(t.occurred_on for t in transitions if t.to_stage == "reunified")
    completed = [f for f in followups if f.kind == "visit" and f.status in ("done", "missed")
                 and _completed_on(f) >= reunified_on]
    if not completed:
        return Plan("visit", "first_visit", reunified_on + days(rules["FIRST_VISIT_DAYS"]))
    last = max(completed, key=lambda f: (_completed_on(f), f.due_on, f.created_at))
    if was_missed(last):
        # Not seen: try again within the shortest cadence whatever the risk level.
        return Plan("visit", "retry_visit", _completed_on(last) + days(rules["VISIT_DAYS_HIGH"]))
    risk = last.risk_level or child.risk_level
    return Plan("visit", "next_visit", _completed_on(last) + days(visit_days(risk, rules)))


def wanted_plans(child: Child, transitions: list[StageTransition], followups: list[Followup],
                 rules: dict) -> dict[str, Plan]:
    """Per follow-up kind, what the rules want scheduled for this child now."""
    if child.deleted_at is not None:
        return {}
    stage, since = child.stage, child.stage_since
    plans: dict[str, Plan] = {}
    if stage == "reception":
        plans["reception_review"] = Plan("reception_review", "reception_review",
                                         since + days(rules["RECEPTION_OVERDUE_DAYS"]))
    if stage == "registered":
        plans["assessment_due"] = Plan("assessment_due", "assessment_due",
                                       since + days(rules["ASSESSMENT_DUE_DAYS"]))
    if stage in VISIT_STAGES and any(t.to_stage == "reunified" for t in transitions):
        plans["visit"] = next_visit(child, transitions, followups, rules)
    if stage == "follow_up":
        reviews = [f.completed_on for f in followups
                   if f.kind == "plan_review" and f.status == "done" and f.completed_on]
        base = max([since, *reviews])
        plans["plan_review"] = Plan("plan_review", "plan_review", base + days(rules["PLAN_REVIEW_DAYS"]))
    # A pending follow-up a person scheduled by hand stands in for the planner's own of that kind.
    by_hand = {f.kind for f in followups if f.status == "scheduled" and not f.planned_by_rule}
    return {kind: plan for kind, plan in plans.items() if kind not in by_hand}


def _retire(changes: ChangeSet, followup: Followup, child: Child, transitions: list[StageTransition]) -> None:
    """A planned follow-up the rules no longer want: done if the child moved on along the path (the
    reception stay ended, the assessment happened), cancelled otherwise."""
    awaited = STAGE_MILESTONES.get(followup.kind)
    left = [t for t in transitions if awaited and t.from_stage == awaited]
    if left and child.deleted_at is None:
        moved = max(left, key=lambda t: (t.occurred_on, t.created_at))
        if moved.to_stage not in ("missing", "closed"):
            change_record(changes, followup, {"status": "done", "completed_on": moved.occurred_on}, SYSTEM)
            return
    change_record(changes, followup, {"status": "cancelled"}, SYSTEM)


def reconcile(changes: ChangeSet, child: Child, transitions: list[StageTransition], followups: list[Followup],
              rules: dict) -> None:
    """Make the child's planner-owned scheduled follow-ups match what the rules want, on ``changes``."""
    plans = wanted_plans(child, transitions, followups, rules)
    mine: dict[str, list[Followup]] = defaultdict(list)
    for f in sorted(followups, key=lambda f: (f.created_at, str(f.id))):
        if f.planned_by_rule and f.status == "scheduled":
            mine[f.kind].append(f)
    for kind, plan in plans.items():
        existing = mine.pop(kind, [])
        if existing:
            keep, *extra = existing
            change_record(changes, keep, {"due_on": plan.due_on, "planned_by_rule": plan.rule}, SYSTEM)
            for duplicate in extra:  # two planners raced: keep the oldest
                change_record(changes, duplicate, {"status": "cancelled"}, SYSTEM)
        else:
            add_record(changes, "followup", {"child_id": child.id, "kind": kind, "due_on": plan.due_on,
                                             "status": "scheduled", "planned_by_rule": plan.rule},
                       SYSTEM, record_id=time_ordered_id())
    for leftovers in mine.values():
        for followup in leftovers:
            _retire(changes, followup, child, transitions)


@dataclass(frozen=True)
class Streak:
    """A child's run of missed visits since the last visit that saw the child."""

    latest: Followup | None  # the last missed visit, when the run is long enough to alert
    last_seen_on: date | None  # due date of the last visit that saw the child


def missed_streak(followups: list[Followup], rules: dict) -> Streak:
    visits = [f for f in followups if f.kind == "visit" and f.status in ("done", "missed")]
    last_seen_on = max((f.due_on for f in visits if not was_missed(f)), default=None)
    run = [f for f in visits if was_missed(f) and (last_seen_on is None or f.due_on > last_seen_on)]
    if len(run) < rules["ESCALATE_MISSED_IN_ROW"]:
        return Streak(None, last_seen_on)
    return Streak(max(run, key=lambda f: (f.due_on, f.created_at)), last_seen_on)


def plan_children(child_ids: set[UUID], *, rules: dict) -> dict[UUID, list[Followup]]:
    """Re-plan the follow-ups of these children, reading their records in three queries and writing
    what changed with one statement per table. Returns each child's follow-ups as read (before
    planning), for the alerts raised at once."""
    ids = list(child_ids)
    # Children and transitions are only read here, so they are read as plain rows of the columns the
    # rules look at, not as ORM objects: building an object per child and per transition (and
    # decrypting a transition's reason and details) cost more than the planning itself on a sync
    # batch. Follow-ups are objects: planning changes them through change_record.
    children = db.session.execute(
        db.select(Child.id, Child.stage, Child.stage_since, Child.risk_level, Child.deleted_at)
        .where(Child.id.in_(ids))
    ).all()
    transitions = defaultdict(list)
    for t in db.session.execute(
        db.select(StageTransition.child_id, StageTransition.from_stage, StageTransition.to_stage,
                  StageTransition.occurred_on, StageTransition.created_at)
        .where(StageTransition.child_id.in_(ids), StageTransition.deleted_at.is_(None))
    ):
        transitions[t.child_id].append(t)
    followups = defaultdict(list)
    for f in db.session.execute(
        db.select(Followup).where(Followup.child_id.in_(ids), Followup.deleted_at.is_(None))
    ).scalars():
        followups[f.child_id].append(f)
    with written() as changes:
        for child in children:
            reconcile(changes, child, transitions[child.id], followups[child.id], rules)
    return followups


def after_changes(child_ids: set[UUID], *, today: date, rules: dict) -> None:
    """Plan follow-ups, raise the alerts a change raises at once (danger reported, visits missed in a
    row), and resolve what no longer applies, for these children. Works from the records planning
    already read: no query here grows with the size of the programme."""
    from models import alerting

    child_ids = {c for c in child_ids if c is not None}
    if not child_ids:
        return
    # Chunks keep the IN lists within every database's parameter limit on big sync batches.
    ids = sorted(child_ids, key=str)
    for start in range(0, len(ids), 500):
        chunk = set(ids[start:start + 500])
        followups = plan_children(chunk, rules=rules)
        streaks = {child_id: missed_streak(followups[child_id], rules) for child_id in chunk}
        alerting.raise_for_changes(
            danger_followup_ids=[f.id for fs in followups.values() for f in fs if danger_reported(f)],
            streak_followup_ids=[s.latest.id for s in streaks.values() if s.latest is not None],
        )
        alerting.resolve_stale(today, child_ids=chunk)
        alerting.resolve_broken_streaks({c: s.last_seen_on for c, s in streaks.items() if s.last_seen_on})
    db.session.flush()
