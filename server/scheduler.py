"""The scheduler (DESIGN §2, §4.5): APScheduler 3 running the periodic jobs, all listed in ``JOBS``.

It never starts inside ``create_app``: only ``flask serve`` (what ``make run`` starts, in-process) and
``flask scheduler run`` (its own process, for production) start it. On PostgreSQL several
``flask scheduler run`` processes may run at once: each waits for a session-level advisory lock, held
on a connection of its own, and only the holder (the leader) runs the jobs. When the leader dies its
connection closes, PostgreSQL releases the lock and a waiting process takes over within
LEADER_POLL_SECONDS. Should two ever run jobs at once anyway, the alert keys and the outbox's
(alert, channel) uniqueness keep that harmless. On SQLite (one host, one process) it runs directly.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from models import db, utcnow
from server import metrics

log = logging.getLogger(__name__)

# The advisory lock's id: any constant that no other part of the programme uses ("HCsc").
LEADER_LOCK_ID = 0x48437363


def scan_job(app: Flask) -> None:
    """Find what is due or overdue, write the alerts, and queue their notifications."""
    from models.alerting import scan
    from server.notify.outbox import enqueue

    result = scan(utcnow().date(), app.config["RULES"])
    queued = enqueue(app.config)
    metrics.ALERTS_CREATED.inc(len(result.created))
    log.info("alert scan: %d created %s, %d resolved, %d notifications queued",
             len(result.created), result.summary(), result.resolved, queued)


def dispatch_job(app: Flask) -> None:
    """Queue alerts raised since the last run (urgent ones come from requests), then send digests."""
    from server.notify.dispatch import dispatch
    from server.notify.outbox import enqueue

    enqueue(app.config)
    db.session.commit()
    result = dispatch(app.config)
    if result.sent or result.failed or result.expired:
        log.info("notifications: sent %s, failed %s, expired %d", result.sent, result.failed, result.expired)


def retention_job(app: Flask) -> None:
    """De-identify the closed cases whose retention period has run out (each batch commits)."""
    from models.retention import run

    result = run(utcnow().date(), app.config["RETENTION_DAYS"], batch_size=app.config["RETENTION_BATCH_SIZE"])
    if result.counts.children:
        log.info("retention: %d cases de-identified", result.counts.children)


def matching_job(app: Flask) -> None:
    """Re-index records changed outside the API and the web (sync, CLI), then block and score them all
    into the match review queue (models/matching.py)."""
    from models.matching import sweep

    result = sweep(app.config["MATCH_THRESHOLD"])
    log.info("matching sweep: %d re-indexed, %d pairs scored, %d queued", result.reindexed, result.pairs,
             result.queued)


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[Flask], None]
    every_seconds: Callable[[dict], int]


# Every periodic job, in one place.
JOBS = (
    Job("alerts_scan", scan_job, lambda config: config["SCAN_INTERVAL_MINUTES"] * 60),
    Job("notifications_dispatch", dispatch_job, lambda config: config["DISPATCH_INTERVAL_SECONDS"]),
    Job("retention", retention_job, lambda config: 24 * 60 * 60),
    Job("matching_sweep", matching_job, lambda config: config["MATCH_SWEEP_HOURS"] * 60 * 60),
)


def run_job(app: Flask, job: Job) -> None:
    """One run of a job in its own app context, committing once at the end (the dispatcher also
    commits per digest, see server/notify/dispatch.py)."""
    with app.app_context():
        try:
            job.run(app)
            db.session.commit()
            metrics.SCHEDULER_RUNS.labels(job.id, "ok").inc()
        except Exception:
            db.session.rollback()
            metrics.SCHEDULER_RUNS.labels(job.id, "failed").inc()
            log.exception("scheduled job %s failed; it runs again at its next time", job.id)
        finally:
            db.session.remove()


def build_scheduler(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    for job in JOBS:
        scheduler.add_job(run_job, "interval", seconds=job.every_seconds(app.config), args=(app, job),
                          id=job.id, name=job.id, replace_existing=True, next_run_time=utcnow())
    return scheduler


class Leadership:
    """Who runs the jobs. PostgreSQL: whoever holds the advisory lock; anything else: this process."""

    def __init__(self, app: Flask):
        with app.app_context():
            self.url = db.engine.url
        self.connection = None

    @property
    def needs_lock(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def try_acquire(self) -> bool:
        if not self.needs_lock:
            return True
        # A connection of its own, outside the pool: closing it (or dying) really ends the session.
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            connection = engine.connect()
            got = connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": LEADER_LOCK_ID}).scalar()
            connection.commit()  # the lock is the session's; don't sit idle in a transaction
        except Exception as exc:
            log.warning("scheduler: cannot reach the database to take the leader lock (%s)", type(exc).__name__)
            return False
        if got:
            self.connection = connection
            return True
        connection.close()
        return False

    def still_held(self) -> bool:
        if not self.needs_lock:
            return True
        try:
            self.connection.execute(text("SELECT 1")).scalar()
            self.connection.commit()
            return True
        except Exception:
            return False

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LEADER_LOCK_ID})
                self.connection.close()
            except Exception:
                pass  # the session is gone, and the lock with it
            self.connection = None


def run_scheduler(app: Flask, stop: threading.Event, announce: Callable[[str], None] = log.info) -> None:
    """Wait to lead, run the jobs while leading, step down if the lock is lost, until ``stop``."""
    poll = app.config["LEADER_POLL_SECONDS"]
    leadership = Leadership(app)
    waiting_said = False
    while not stop.is_set():
        if not leadership.try_acquire():
            if not waiting_said:
                announce("scheduler: another process leads; waiting to take over")
                waiting_said = True
            stop.wait(poll)
            continue
        waiting_said = False
        scheduler = build_scheduler(app)
        scheduler.start()
        announce(f"scheduler: leading; jobs {', '.join(job.id for job in JOBS)}")
        while not stop.wait(poll):
            if not leadership.still_held():
                announce("scheduler: lost the database connection holding the leader lock; stepping down")
                break
        scheduler.shutdown(wait=True)
        leadership.release()
    announce("scheduler: stopped")


_in_process: list[threading.Thread] = []


def start_in_process(app: Flask) -> threading.Thread | None:
    """For the single-process ``make run``: the scheduler in a daemon thread, at most once per
    process however often this is called. Never under tests."""
    if app.testing:
        log.info("scheduler: not started under tests")
        return None
    if not _in_process:
        thread = threading.Thread(target=run_scheduler, args=(app, threading.Event()), name="scheduler",
                                  daemon=True)
        thread.start()
        _in_process.append(thread)
    return _in_process[0]
