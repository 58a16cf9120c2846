"""/metrics (issue 15): off by default, bearer-protected when on, labelled by route rule and outcome
(never by a path with ids), and added up across processes in gunicorn's multi-process mode."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from models import db
from server import create_app
from server.scheduler import JOBS, Job, run_job
from tests import test_notify_dispatch as notify_tests
from tests.conftest import make_config
from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones

TOKEN = "fictional-metrics-token-for-tests"
notify_app, ports = notify_tests.notify_app, notify_tests.ports  # its fixtures, for the notification counts
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def metrics_app(migrated):
    app = create_app(make_config(migrated, METRICS_TOKEN=TOKEN))
    yield app
    from tests.conftest import empty_tables

    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def test_metrics_are_off_without_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_metrics_need_the_bearer_token(metrics_app):
    client = metrics_app.test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "unauthorized"
    assert "homecoming_http_requests_total" in scrape(client)


def test_requests_are_counted_by_route_rule_never_by_path(metrics_app):
    client = metrics_app.test_client()
    child_id = uuid.uuid4()
    rule = "/api/v1/children/<uuid:child_id>"
    before = value("homecoming_http_requests_total", method="GET", route=rule, status="401")
    assert client.get(f"/api/v1/children/{child_id}").status_code == 401
    assert value("homecoming_http_requests_total", method="GET", route=rule, status="401") == before + 1
    text = scrape(client)
    assert f'route="{rule}"' in text
    assert str(child_id) not in text
    assert "homecoming_http_request_duration_seconds_bucket" in text
    assert "homecoming_db_connections_in_use" in text
    assert "homecoming_db_connections_opened_total" in text


def test_push_outcomes_and_pull_pages_are_counted(metrics_app):
    client = metrics_app.test_client()
    phone = people_and_phones(metrics_app, client, 1)["cw1"]
    applied = value("homecoming_sync_push_mutations_total", outcome="applied")
    duplicate = value("homecoming_sync_push_mutations_total", outcome="duplicate")
    rejected = value("homecoming_sync_push_mutations_total", outcome="rejected")
    pages = value("homecoming_sync_pull_pages_total")
    registration = mutation("child", new_id(), fields=child_fields())
    phone.push_ok(registration, mutation("child", new_id(), op="update", base_version=1, fields={"sex": "female"}))
    phone.push_ok(registration)  # the same mutation in another batch
    phone.pull_all()
    assert value("homecoming_sync_push_mutations_total", outcome="applied") == applied + 1
    assert value("homecoming_sync_push_mutations_total", outcome="rejected") == rejected + 1
    assert value("homecoming_sync_push_mutations_total", outcome="duplicate") == duplicate + 1
    assert value("homecoming_sync_pull_pages_total") == pages + 1


def test_scheduler_runs_and_alerts_are_counted(metrics_app):
    scan = JOBS[0]
    ok = value("homecoming_scheduler_runs_total", job=scan.id, result="ok")
    run_job(metrics_app, scan)
    assert value("homecoming_scheduler_runs_total", job=scan.id, result="ok") == ok + 1

    def broken(_app):
        raise RuntimeError("a fictional failure")

    failed = value("homecoming_scheduler_runs_total", job="broken", result="failed")
    run_job(metrics_app, Job("broken", broken, lambda config: 60))
    assert value("homecoming_scheduler_runs_total", job="broken", result="failed") == failed + 1
    assert "homecoming_alerts_created_total" in scrape(metrics_app.test_client())


def test_gunicorn_workers_figures_are_added_up(tmp_path):
    """Two processes count in PROMETHEUS_MULTIPROC_DIR; a third (any worker answering /metrics) sums."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    bump = "from server import metrics; metrics.PULL_PAGES.inc(); metrics.count_push([{'status': 'applied'}])"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", bump], cwd=ROOT, env=env, check=True, timeout=60)
    read = ("from server import create_app; from tests.conftest import make_config;"
            "app = create_app(make_config('sqlite://', METRICS_TOKEN='t'));"
            "print(app.test_client().get('/metrics', headers={'Authorization': 'Bearer t'}).get_data(as_text=True))")
    out = subprocess.run([sys.executable, "-c", read], cwd=ROOT, env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert "homecoming_sync_pull_pages_total 2.0" in out
    assert 'homecoming_sync_push_mutations_total{outcome="applied"} 2.0' in out


def test_notification_outcomes_are_counted(notify_app):
    from datetime import date

    from server.notify.dispatch import dispatch
    from server.notify.outbox import enqueue

    failed = {channel: value("homecoming_notifications_total", channel=channel, outcome="failed")
              for channel in ("email", "webhook")}
    with notify_app.app_context():
        notify_tests.seed(date(2025, 3, 10))
        enqueue(notify_app.config)
        db.session.commit()
        dispatch(notify_app.config)  # nothing listens: every digest fails (2 e-mails, 3 webhook calls)
    assert value("homecoming_notifications_total", channel="email", outcome="failed") == failed["email"] + 2
    assert value("homecoming_notifications_total", channel="webhook", outcome="failed") == failed["webhook"] + 3
