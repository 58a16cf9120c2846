"""``flask alerts scan|replan|dispatch`` and ``flask scheduler run``: the scheduler's work on demand
(for cron users and tests), and the scheduler as a process of its own (for production)."""

import random
import signal
import sys
import threading
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from models import Child, StageTransition, User, db, utcnow
from models.lifecycle import OPEN_STAGES

alerts = AppGroup("alerts", help="Follow-up planning, the alert scan and notifications, run once.")
SCAN_YEARS = 100
scheduler = AppGroup("scheduler", help="The periodic jobs: scan and notification dispatch.")


@alerts.command("scan")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Scan as of this date (YYYY-MM-DD) instead of today.")
def scan_command(as_of):
    """One pass: write the alerts due as of the date, resolve stale ones, queue notifications; print
    what was created."""
    from models.alerting import scan
    from server.notify.outbox import enqueue

    today = utcnow().date()
    day = as_of.date() if as_of else today
    if abs(day.year - today.year) > SCAN_YEARS:
        # The rules reach a year or so either side of the day: near year 1 or 9999 that overflows.
        raise click.BadParameter(f"within {SCAN_YEARS} years of today ({today}).", param_hint="'--as-of'")
    result = scan(day, current_app.config["RULES"])
    queued = enqueue(current_app.config)
    codes = dict(db.session.execute(db.select(Child.id, Child.case_code).where(
        Child.id.in_({a.child_id for a in result.created}))).all()) if result.created else {}
    names = dict(db.session.execute(db.select(User.id, User.username)).all()) if result.created else {}
    db.session.commit()
    for alert in result.created:
        click.echo(f"created {alert.severity:<7} {alert.rule:<22} case {codes.get(alert.child_id, '-')} "
                   f"due {alert.due_on} to {names.get(alert.recipient_id, '?')}")
    click.echo(f"Scan as of {day}: {len(result.created)} created, {result.resolved} resolved, "
               f"{queued} notifications queued.")


def replan_all(today) -> int:
    """Re-plan every open case; returns how many. Flushes, never commits."""
    from models.planning import after_changes

    ids = set(db.session.execute(db.select(Child.id).where(
        Child.deleted_at.is_(None), Child.stage.in_(OPEN_STAGES))).scalars())
    after_changes(ids, today=today, rules=current_app.config["RULES"])
    return len(ids)


def plan_and_scan(today, seed_value: int = 11):
    """What the demo needs to look lived-in: past visits and plan reviews of the children in
    reintegration (some missed, a few reporting danger), every case planned, and one scan as of
    ``today``, so there are follow-ups due soon, due and overdue, and alerts of every kind."""
    from models.alerting import scan

    demo_history(today, random.Random(seed_value))
    replan_all(today)
    return scan(today, current_app.config["RULES"])


def demo_history(today, rng: random.Random) -> None:
    """Fictional visit outcomes from reunification until about today (flushes, never commits)."""
    from models.planning import VISIT_STAGES, visit_days
    from models.records import Actor, create_record

    rules = current_app.config["RULES"]
    reunified = dict(db.session.execute(
        db.select(StageTransition.child_id, db.func.min(StageTransition.occurred_on))
        .where(StageTransition.to_stage == "reunified").group_by(StageTransition.child_id)).all())
    children = db.session.execute(db.select(Child).where(
        Child.stage.in_(VISIT_STAGES), Child.deleted_at.is_(None)).order_by(Child.case_code)).scalars()
    for index, child in enumerate(children):
        if child.id not in reunified:
            continue
        actor = Actor(user=child.caseworker, source="system")
        visits, day = [], reunified[child.id] + timedelta(days=rules["FIRST_VISIT_DAYS"])
        while day <= today:
            base = {"child_id": child.id, "kind": "visit", "due_on": day}
            if rng.random() < 0.1:
                visits.append({**base, "status": "missed"})
                day += timedelta(days=rules["VISIT_DAYS_HIGH"])
                continue
            done = min(today, day + timedelta(days=rng.randint(-2, 4)))
            risk = rng.choices(("high", "medium", "low", "none"), weights=(1, 3, 4, 2))[0]
            concerns = ["re_recruitment"] if rng.random() < 0.02 else []
            visits.append({**base, "status": "done", "completed_on": done, "seen": True, "risk_level": risk,
                           "wellbeing": rng.choice(("good", "fair", "poor")), "concerns": concerns})
            day = done + timedelta(days=visit_days(risk, rules))
        # A third of the caseworkers are behind: their last visit has not happened yet, so it is overdue.
        if visits and visits[-1]["due_on"] < today - timedelta(days=2) and rng.random() < 0.35:
            visits.pop()
        for visit in visits:
            create_record("followup", visit, actor)
        if index % 6 == 1:
            # Some caseworkers booked the next visit themselves, for today or the next two days.
            create_record("followup", {"child_id": child.id, "kind": "visit", "status": "scheduled",
                                       "due_on": today + timedelta(days=index % 3)}, actor)
        until = today
        if child.stage == "follow_up":
            review = child.stage_since + timedelta(days=rules["PLAN_REVIEW_DAYS"])
            while review < until:
                create_record("followup", {"child_id": child.id, "kind": "plan_review", "due_on": review,
                                           "status": "done", "completed_on": review}, actor)
                review += timedelta(days=rules["PLAN_REVIEW_DAYS"])


@alerts.command("replan")
def replan_command():
    """Re-plan the follow-ups of every open case, e.g. after changing a rule setting."""
    count = replan_all(utcnow().date())
    db.session.commit()
    click.echo(f"Re-planned the follow-ups of {count} open cases.")


@alerts.command("dispatch")
def dispatch_command():
    """Queue and send the pending notifications once."""
    from server.notify.dispatch import dispatch
    from server.notify.outbox import enqueue

    enqueue(current_app.config)
    db.session.commit()
    result = dispatch(current_app.config)
    for recipient, channel, count in result.sent:
        click.echo(f"sent {channel} digest of {count} alert(s) to {recipient}")
    for recipient, channel, error in result.failed:
        click.echo(f"failed {channel} to {recipient}: {error} (will retry)")
    click.echo(f"{len(result.sent)} sent, {len(result.failed)} failed, {result.expired} expired.")


@scheduler.command("run")
def run_command():
    """Run the scheduler in this process until SIGTERM or Ctrl-C. Several may run on PostgreSQL: one
    leads, the others wait and take over if it dies."""
    from server.scheduler import run_scheduler

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    app = current_app._get_current_object()
    run_scheduler(app, stop, announce=_announce)


def _announce(line: str) -> None:
    # Flushed at once: operators and supervisors (and the tests) watch these lines to see who leads.
    click.echo(line)
    sys.stdout.flush()
