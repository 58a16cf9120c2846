"""The scan: idempotent, safe to run concurrently, sequence numbers for devices, auto-resolution;
``flask alerts scan``; the rules as settings, refused at start when invalid."""

import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

import config as settings
from config import RULE_DEFAULTS, rule_problems
from models import Actor, Alert, Followup, alerting, db
from models.changes import current_seq
from models.planning import after_changes
from models.records import transition, update_record
from server import create_app
from tests.conftest import make_config
from tests.factories import make_child, make_user, walk

ROOT = Path(__file__).resolve().parent.parent
IN_FOLLOW_UP = ["registered", "assessed", "reunified", "follow_up"]


def programme(children=4):
    """Caseworkers with children in follow-up whose first visit was due on 2025-02-23, two managers."""
    cws = [make_user("caseworker"), make_user("caseworker")]
    managers = [make_user("manager"), make_user("manager")]
    kids = []
    for i in range(children):
        owner = cws[i % 2]
        child = make_child(owner)
        walk(child, IN_FOLLOW_UP, Actor(user=owner, source="api"))
        kids.append(child)
    db.session.commit()
    after_changes({c.id for c in kids}, today=date(2025, 2, 20), rules=RULE_DEFAULTS)
    db.session.commit()
    return cws, managers, kids


def all_alerts():
    return db.session.execute(db.select(Alert).order_by(Alert.seq)).scalars().all()


def test_scan_twice_creates_nothing_the_second_time(ctx):
    cws, managers, kids = programme()
    first = alerting.scan(date(2025, 3, 10), RULE_DEFAULTS)
    db.session.commit()
    # Per child: overdue to the caseworker and an escalation to each of the two managers.
    assert first.summary() == {"visit_escalated": 8, "visit_overdue": 4}
    before = [(a.key, a.seq, a.version, a.status) for a in all_alerts()]
    again = alerting.scan(date(2025, 3, 10), RULE_DEFAULTS)
    db.session.commit()
    assert len(again.created) == 0 and again.resolved == 0
    assert [(a.key, a.seq, a.version, a.status) for a in all_alerts()] == before
    # Keys spell child:rule:due date:recipient; sequence numbers are unique and below the counter.
    alert = first.created[0]
    assert alert.key == alerting.alert_key(alert.child_id, alert.rule, alert.due_on, alert.recipient_id)
    seqs = [a.seq for a in all_alerts()]
    assert len(set(seqs)) == len(seqs) and min(seqs) > 0 and max(seqs) <= current_seq(db.session)
    assert {a.recipient_id for a in all_alerts() if a.rule == "visit_overdue"} == {cw.id for cw in cws}


def test_alerts_resolve_when_the_child_moves_on_and_devices_see_it(ctx):
    cws, managers, kids = programme(children=2)
    alerting.scan(date(2025, 3, 10), RULE_DEFAULTS)
    db.session.commit()
    mark = current_seq(db.session)
    transition(kids[0], "missing", Actor(user=managers[0], source="api"), occurred_on=date(2025, 3, 11),
               today=date(2025, 3, 11), reason="Fictional: not found at home.")
    db.session.commit()
    after_changes({kids[0].id}, today=date(2025, 3, 11), rules=RULE_DEFAULTS)
    db.session.commit()
    resolved = [a for a in all_alerts() if a.status == "resolved"]
    assert {a.child_id for a in resolved} == {kids[0].id} and len(resolved) == 3
    # Resolution is a change a device pulls: a new version and a later sequence number.
    assert all(a.version == 2 and a.seq > mark for a in resolved)
    visits = db.session.execute(db.select(Followup).where(Followup.child_id == kids[0].id)).scalars().all()
    assert {(f.kind, f.status) for f in visits} == {("visit", "cancelled"), ("plan_review", "cancelled")}
    # The other child's alerts stay open, and the next scan does not raise the first child's again.
    assert len(alerting.scan(date(2025, 3, 12), RULE_DEFAULTS).created) == 0


def test_a_reassigned_child_takes_its_alerts_to_the_new_caseworker(ctx):
    cws, managers, kids = programme(children=1)
    alerting.scan(date(2025, 3, 10), RULE_DEFAULTS)
    db.session.commit()
    old, new = cws[0], cws[1]
    assert {a.recipient_id for a in all_alerts() if a.rule == "visit_overdue"} == {old.id}
    update_record(kids[0], {"caseworker_id": new.id}, Actor(user=managers[0], source="api"))
    db.session.commit()
    after_changes({kids[0].id}, today=date(2025, 3, 11), rules=RULE_DEFAULTS)
    db.session.commit()
    live = {(a.rule, a.recipient_id) for a in all_alerts() if a.status in alerting.LIVE}
    # The old caseworker no longer holds the case code; the managers' escalations stay.
    assert ("visit_overdue", old.id) not in live
    assert {r for r, _ in live} == {"visit_escalated"}
    alerting.scan(date(2025, 3, 11), RULE_DEFAULTS)
    db.session.commit()
    assert {a.recipient_id for a in all_alerts() if a.rule == "visit_overdue" and a.status == "open"} == {new.id}


def test_a_visit_done_early_replans_what_follows(ctx):
    cws, managers, kids = programme(children=1)
    visit = db.session.execute(db.select(Followup).where(Followup.kind == "visit")).scalar_one()
    update_record(visit, {"status": "done", "completed_on": date(2025, 2, 20), "seen": True,
                          "risk_level": "low"}, Actor(user=cws[0], source="api"))
    db.session.commit()
    after_changes({kids[0].id}, today=date(2025, 2, 20), rules=RULE_DEFAULTS)
    db.session.commit()
    after_changes({kids[0].id}, today=date(2025, 2, 20), rules=RULE_DEFAULTS)  # twice: no change
    db.session.commit()

    def scheduled():
        return db.session.execute(db.select(Followup.due_on, Followup.version).where(
            Followup.kind == "visit", Followup.status == "scheduled")).one()

    assert scheduled() == (date(2025, 5, 21), 1)  # low risk: 90 days after the visit
    # The risk level is corrected (say, by a device that was offline): the next visit moves.
    update_record(visit, {"risk_level": "high"}, Actor(user=cws[0], source="device"))
    db.session.commit()
    after_changes({kids[0].id}, today=date(2025, 2, 21), rules=RULE_DEFAULTS)
    db.session.commit()
    assert scheduled() == (date(2025, 2, 27), 2)


@pytest.mark.postgres
def test_two_scans_at_once_write_one_set_of_alerts(app):
    with app.app_context():
        programme(children=6)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def scan():
        try:
            with app.app_context():
                barrier.wait()
                results.append(len(alerting.scan(date(2025, 3, 10), RULE_DEFAULTS).created))
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with app.app_context():
        assert len(all_alerts()) == 6 * 3
    assert sum(results) == 18 and sorted(results)[0] == 0


def test_cli_scan_prints_what_it_created(app, runner):
    with app.app_context():
        cws, managers, kids = programme(children=1)
        code = kids[0].case_code
    result = runner.invoke(args=["alerts", "scan", "--as-of", "2025-03-10"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(1 for line in lines if line.startswith("created") and code in line) == 3
    assert any("visit_overdue" in line and "due 2025-02-23" in line for line in lines)
    assert lines[-1].startswith("Scan as of 2025-03-10: 3 created, 0 resolved")
    assert "Fictional" not in result.output
    again = runner.invoke(args=["alerts", "scan", "--as-of", "2025-03-10"])
    assert again.output.splitlines()[-1].startswith("Scan as of 2025-03-10: 0 created")


@pytest.mark.parametrize("bad", ["2025-13-01", "yesterday", "10/03/2025"])
def test_cli_scan_refuses_a_bad_date(runner, bad):
    result = runner.invoke(args=["alerts", "scan", "--as-of", bad])
    assert result.exit_code == 2
    assert "Invalid value for '--as-of'" in result.output and "%Y-%m-%d" in result.output


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("RECEPTION_WARN_DAYS", 90, "RECEPTION_WARN_DAYS must be less than HOMECOMING_RECEPTION_OVERDUE_DAYS"),
    ("VISIT_DAYS_HIGH", 0, "HOMECOMING_VISIT_DAYS_HIGH must be a whole number of days from 1 to 3650"),
    ("VISIT_DAYS_MEDIUM", 120, "Visits cannot be rarer at a higher risk level"),
    ("DUE_SOON_DAYS", 7, "HOMECOMING_DUE_SOON_DAYS must be less than HOMECOMING_VISIT_DAYS_HIGH"),
    ("PLAN_REVIEW_DAYS", -5, "HOMECOMING_PLAN_REVIEW_DAYS must be a whole number"),
])
def test_invalid_rules_stop_the_start(database_url, setting, value, message):
    config = make_config(database_url)
    config.RULES = {**RULE_DEFAULTS, setting: value}
    with pytest.raises(ValueError, match="Invalid settings") as raised:
        create_app(config)
    assert message in str(raised.value)
    assert rule_problems(RULE_DEFAULTS) == []


def test_rules_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HOMECOMING_VISIT_DAYS_LOW", "60")
    assert settings.TestingConfig().RULES["VISIT_DAYS_LOW"] == 60
    monkeypatch.setenv("HOMECOMING_VISIT_DAYS_LOW", "sixty")
    with pytest.raises(ValueError, match="HOMECOMING_VISIT_DAYS_LOW must be a whole number, got 'sixty'"):
        settings.TestingConfig()


def test_webhook_without_a_secret_is_refused(database_url):
    with pytest.raises(ValueError, match="HOMECOMING_WEBHOOK_SECRET"):
        create_app(make_config(database_url, WEBHOOK_URL="http://127.0.0.1:9/hook", WEBHOOK_SECRET=None))


def test_a_real_start_with_a_bad_rule_says_why(tmp_path):
    env = {**os.environ, "HOMECOMING_CONFIG": "development", "HOMECOMING_SECRET_KEY": "x",
           "HOMECOMING_DATA_KEY": settings.TestingConfig().DATA_KEY,
           "HOMECOMING_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}",
           "HOMECOMING_RECEPTION_WARN_DAYS": "100"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "alerts", "scan"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "HOMECOMING_RECEPTION_WARN_DAYS must be less than HOMECOMING_RECEPTION_OVERDUE_DAYS" in result.stderr
