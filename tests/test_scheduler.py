"""The scheduler: its jobs, that it never starts by itself, and on PostgreSQL real ``flask scheduler
run`` processes electing one leader, handing over when the leader is killed, and sending one message
per recipient however many of them run."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

import config as settings
from models import Actor, Alert, db
from models.notifications import Notification
from server import create_app, scheduler
from tests.conftest import make_config
from tests.factories import make_child, make_user, walk
from tests.test_notify_dispatch import Inbox, free_port

ROOT = Path(__file__).resolve().parent.parent


def test_jobs_are_listed_once_with_ids_coalesce_and_one_instance(app):
    built = scheduler.build_scheduler(app)
    assert not built.running
    built.start(paused=True)  # APScheduler applies the job defaults when it starts; paused runs nothing
    try:
        jobs = {job.id: job for job in built.get_jobs()}
    finally:
        built.shutdown(wait=False)
    assert list(jobs) == ["alerts_scan", "notifications_dispatch", "retention", "matching_sweep"] == [
        job.id for job in scheduler.JOBS]
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
    assert jobs["alerts_scan"].trigger.interval == timedelta(minutes=app.config["SCAN_INTERVAL_MINUTES"])
    assert jobs["notifications_dispatch"].trigger.interval == timedelta(
        seconds=app.config["DISPATCH_INTERVAL_SECONDS"])


def scheduler_threads():
    return [t for t in threading.enumerate() if t.name == "scheduler" or "APScheduler" in t.name]


def test_never_starts_by_itself_nor_under_tests(app):
    assert scheduler_threads() == []
    create_app(make_config(app.config["SQLALCHEMY_DATABASE_URI"]))
    assert scheduler_threads() == []
    assert scheduler.start_in_process(app) is None
    assert scheduler_threads() == []


def test_a_failing_job_is_rolled_back_and_logged(app, caplog):
    def boom(_app):
        make_user("caseworker", username="half.written")
        raise RuntimeError("fictional failure")

    scheduler.run_job(app, scheduler.Job("boom", boom, lambda config: 60))
    assert "scheduled job boom failed" in caplog.text
    with app.app_context():
        from models import User

        assert db.session.execute(db.select(User).where(User.username == "half.written")).first() is None


def test_leadership(app):
    """SQLite: this process leads. PostgreSQL: one holder of the advisory lock at a time."""
    first, second = scheduler.Leadership(app), scheduler.Leadership(app)
    assert first.try_acquire() and first.still_held()
    try:
        if first.needs_lock:
            assert not second.try_acquire()
            first.release()
            assert second.try_acquire() and second.still_held()
        else:
            assert second.try_acquire()
    finally:
        first.release()
        second.release()


class Process:
    """A ``flask scheduler run`` subprocess whose output lines are read as they come."""

    def __init__(self, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip())

    def wait_for(self, text, timeout=30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.seen):
                return True
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    return False
        return False

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def smtp():
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def scheduler_env(migrated, smtp):
    return {**os.environ, "HOMECOMING_CONFIG": "development", "HOMECOMING_DATABASE_URL": migrated,
            "HOMECOMING_SECRET_KEY": "fictional-secret", "HOMECOMING_DATA_KEY": settings.TestingConfig().DATA_KEY,
            "HOMECOMING_LEADER_POLL_SECONDS": "1", "HOMECOMING_DISPATCH_INTERVAL_SECONDS": "1",
            "HOMECOMING_SMTP_HOST": "127.0.0.1", "HOMECOMING_SMTP_PORT": str(smtp[1]),
            "HOMECOMING_BASE_URL": "http://homecoming.test"}


def overdue_programme(app):
    """Three children of one caseworker whose first visits are weeks overdue today, one manager."""
    today = date.today()
    with app.app_context():
        cw = make_user("caseworker", username="cw.sched", email="cw.sched@example.org")
        make_user("manager", username="boss.sched", email="boss.sched@example.org")
        for _ in range(3):
            child = make_child(cw, identified_on=today - timedelta(days=120), given_name="Fictional")
            walk(child, ["registered", "assessed", "reunified", "follow_up"], Actor(user=cw, source="api"),
                 start=today - timedelta(days=110), step_days=10)
        db.session.commit()
        from models import Child
        from models.planning import after_changes

        ids = set(db.session.execute(db.select(Child.id)).scalars())
        after_changes(ids, today=today, rules=app.config["RULES"])
        db.session.commit()


def wait_until(condition, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_schedulers_one_leader_one_message_per_recipient_and_handover(app, scheduler_env, smtp):
    inbox, _ = smtp
    overdue_programme(app)
    first, second = Process(scheduler_env), Process(scheduler_env)
    try:
        assert wait_until(lambda: first.wait_for("scheduler: leading", 0.3) or second.wait_for("scheduler: leading", 0.3))
        leader, follower = (first, second) if any("leading" in line for line in first.seen) else (second, first)
        assert follower.wait_for("another process leads; waiting")
        # The leader scans and sends: one digest per recipient, each listing the three children.
        assert wait_until(lambda: len(inbox.messages) >= 2)
        time.sleep(3)  # several more dispatch runs: nothing is sent again
        assert sorted(to for to, _ in inbox.messages) == [["boss.sched@example.org"], ["cw.sched@example.org"]]
        assert all(b"Fictional" not in raw for _, raw in inbox.messages)
        with app.app_context():
            alerts = db.session.execute(db.select(Alert.rule, db.func.count()).group_by(Alert.rule)).all()
            assert dict(alerts) == {"visit_overdue": 3, "visit_escalated": 3}

        # The leader dies without a word; the follower takes over within a few polls.
        leader.stop()
        assert follower.wait_for("scheduler: leading", 15), follower.seen
        time.sleep(3)  # the new leader scans and dispatches: no second alert, no second message
        assert len(inbox.messages) == 2
        with app.app_context():
            assert db.session.execute(db.select(db.func.count()).select_from(Alert)).scalar() == 6
            statuses = db.session.execute(db.select(Notification.status, db.func.count())
                                          .group_by(Notification.status)).all()
            assert dict(statuses) == {"sent": 6}

        # A polite stop: SIGTERM ends the leader cleanly and releases the lock.
        follower.proc.send_signal(signal.SIGTERM)
        assert follower.wait_for("scheduler: stopped", 15)
        assert follower.proc.wait(15) == 0
    finally:
        first.stop()
        second.stop()


def test_make_run_starts_it_once_per_process(app, monkeypatch):
    """What ``flask serve`` does before serving: one scheduler thread, however often it is asked."""
    started, release = [], threading.Event()

    def fake_run(app, stop, announce=None):  # stands in for the real loop, which would run the jobs
        started.append(app)
        release.wait(10)

    monkeypatch.setattr(scheduler, "run_scheduler", fake_run)
    monkeypatch.setattr(scheduler, "_in_process", [])
    monkeypatch.setitem(app.config, "TESTING", False)
    try:
        first = scheduler.start_in_process(app)
        second = scheduler.start_in_process(app)
        assert first is second and first.name == "scheduler" and first.daemon
        assert wait_until(lambda: len(started) == 1, 5) and len(started) == 1
    finally:
        release.set()
        first.join(10)
