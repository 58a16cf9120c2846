"""The production entry point: /readyz, and deploy/gunicorn.conf.py reading its settings from the
environment (issue 15)."""

import re
import runpy
from pathlib import Path

import pytest

from server import create_app, health
from tests.conftest import make_config

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"


def test_readyz_when_the_schema_is_the_codes_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "revision": health.code_revision()}
    assert health.code_revision().startswith("0001")


def test_readyz_refuses_traffic_until_migrations_ran(client, monkeypatch):
    monkeypatch.setattr(health, "code_revision", lambda: "0002_newer_code")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = response.get_json()["error"]
    assert error["code"] == "not_migrated"
    assert error["details"]["code_revision"] == "0002_newer_code"
    assert error["details"]["database_revision"].startswith("0001")


def test_readyz_on_a_database_never_migrated(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'empty.sqlite'}"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"]["details"]["database_revision"] is None


def test_readyz_when_the_database_is_down():
    app = create_app(make_config("sqlite:////nonexistent-dir/x.sqlite"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HOMECOMING_BIND", "127.0.0.1:8123")
    monkeypatch.setenv("HOMECOMING_WORKERS", "3")
    monkeypatch.setenv("HOMECOMING_THREADS", "6")
    settings = runpy.run_path(str(GUNICORN_CONF))
    assert (settings["bind"], settings["workers"], settings["threads"]) == ("127.0.0.1:8123", 3, 6)
    assert settings["accesslog"] is None  # a path or query can carry a name; we log route rules instead
    assert settings["preload_app"] is False


def test_gunicorn_keeps_idle_connections_longer_than_nginx_does(monkeypatch):
    """Else gunicorn closes a kept-alive connection as nginx sends a push on it, and the device gets a
    502 (nginx does not repeat a POST); without nginx, a device's reused connection is cut the same way."""
    monkeypatch.delenv("HOMECOMING_KEEPALIVE", raising=False)
    gunicorn = runpy.run_path(str(GUNICORN_CONF))["keepalive"]
    upstream = (GUNICORN_CONF.parent / "nginx" / "homecoming.conf").read_text().split("upstream homecoming_web")[1]
    nginx = int(re.search(r"keepalive_timeout (\d+)s;", upstream.split("}")[0]).group(1))
    assert gunicorn > nginx
    monkeypatch.setenv("HOMECOMING_KEEPALIVE", "90")
    assert runpy.run_path(str(GUNICORN_CONF))["keepalive"] == 90


def test_gunicorn_refuses_a_worker_count_that_is_not_a_number(monkeypatch):
    monkeypatch.setenv("HOMECOMING_WORKERS", "many")
    with pytest.raises(SystemExit, match="HOMECOMING_WORKERS must be a whole number"):
        runpy.run_path(str(GUNICORN_CONF))


def test_a_pull_whose_database_goes_away_is_a_503_with_retry_after(app, client, monkeypatch):
    """Seen under bench/load_faults.py: PostgreSQL restarting while a page was being encoded escaped the
    app (gunicorn's bare 500). The first chunk is now made in the view, where errors become 503."""
    from sqlalchemy.exc import OperationalError

    from server import sync_endpoint
    from tests.sync_server_helpers import people_and_phones

    phone = people_and_phones(app, client, 1)["cw1"]

    def database_gone(_changes):
        raise OperationalError("SELECT …", {}, Exception("server closed the connection unexpectedly"))
        yield  # a generator, as the real one

    monkeypatch.setattr(sync_endpoint, "encode_changes", database_gone)
    response = phone.pull()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"


def test_a_pull_page_never_streamed_writes_nothing_into_another_request(app, client, monkeypatch):
    """Seen under bench/load_faults.py (PostgreSQL restart, saturated): a pull whose response was never
    streamed was finalized by the garbage collector inside another request's query, and its audit ran
    in that request's session and connection: the worker deadlocked holding row locks every push waits
    for. A page is audited by its own view now, before it streams: its body, finalized anywhere, writes
    nothing."""
    import gc

    from models import AuditEvent, db
    from server import sync_endpoint
    from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones

    def audited_pages():
        return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "sync.pull"))

    phone = people_and_phones(app, client, 1)["cw1"]
    phone.push_ok(mutation("child", new_id(), fields=child_fields()))
    # Chunks so small that the first is made before the body has run to its end.
    monkeypatch.setattr(sync_endpoint, "STREAM_CHUNK", 1)
    unread = phone.pull(buffered=False)  # the view ran and made the first chunk; nothing streamed yet
    monkeypatch.undo()
    with app.test_request_context():
        other = db.session()
        del unread
        gc.collect()  # as the collector may, during any other request
        assert not other.new and not other.dirty
        assert audited_pages() == 1  # by its view, once
    assert phone.pull().status_code == 200
    with app.app_context():
        assert audited_pages() == 2
