"""Structured logs (issue 15): JSON lines with HOMECOMING_LOG_FORMAT=json, a request id per request
echoed to the caller, and no child's name anywhere in them, whatever the request carried."""

import io
import json
import logging

import pytest

from models import db
from server import create_app
from server.logging_setup import _Handler
from tests.conftest import empty_tables, make_config
from tests.factories import make_user, token_for
from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones

NAME = "Lakwena-Fictional"  # a fictional name, distinctive enough to find in any log line
VILLAGE = "Fictional-Paibona"


def captured_app(migrated, log_format):
    app = create_app(make_config(migrated, LOG_FORMAT=log_format))
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, _Handler)]
    stream = io.StringIO()
    handler.setStream(stream)
    return app, stream


@pytest.fixture
def json_app(migrated):
    app, stream = captured_app(migrated, "json")
    yield app, stream
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def test_a_request_carrying_a_childs_name_logs_no_name(json_app):
    app, stream = json_app
    client = app.test_client()
    phone = people_and_phones(app, client, 1)["cw1"]
    with app.app_context():
        manager = make_user("manager")
        db.session.commit()
        headers = token_for(client, manager)
    child = {"given_name": NAME, "family_name": "Demo", "sex": "male", "district": "Gulu", "village": VILLAGE,
             "caseworker": "cw1"}
    assert client.post("/api/v1/children", json=child, headers=headers).status_code == 201
    assert client.post("/api/v1/children", json={**child, "sex": NAME}, headers=headers).status_code == 422
    assert client.get("/api/v1/children", query_string={"q": NAME}, headers=headers).status_code == 200
    phone.push_ok(mutation("child", new_id(), fields=child_fields(given_name=NAME, village=VILLAGE)))
    phone.pull_all()
    client.get(f"/children?q={NAME}")  # the web, signed out

    text = stream.getvalue()
    assert NAME.lower() not in text.lower() and VILLAGE.lower() not in text.lower()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "homecoming.request"]
    assert {line["route"] for line in requests} >= {"/api/v1/children", "/api/v1/sync/push", "/api/v1/sync/pull"}
    assert all(len(line["request_id"]) == 32 for line in requests)
    assert len({line["request_id"] for line in requests}) == len(requests)


def test_the_callers_request_id_is_kept_and_echoed_when_sane(json_app):
    app, stream = json_app
    client = app.test_client()
    response = client.get("/healthz", headers={"X-Request-Id": "nginx-3f2a9c1d7b"})
    assert response.headers["X-Request-Id"] == "nginx-3f2a9c1d7b"
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["request_id"] == "nginx-3f2a9c1d7b" and line["status"] == 200 and line["route"] == "/healthz"

    forged = client.get("/healthz", headers={"X-Request-Id": 'x" injected; INFO fake line'})
    assert forged.headers["X-Request-Id"] != 'x" injected; INFO fake line'
    assert len(forged.headers["X-Request-Id"]) == 32


def test_text_logs_by_default_carry_the_request_id(migrated):
    app, stream = captured_app(migrated, "text")
    app.test_client().get("/healthz", headers={"X-Request-Id": "req-0123456789"})
    assert "homecoming.request [req-0123456789]: GET /healthz 200" in stream.getvalue()


def test_an_unknown_log_format_is_refused(migrated):
    with pytest.raises(ValueError, match="HOMECOMING_LOG_FORMAT must be text or json"):
        create_app(make_config(migrated, LOG_FORMAT="xml"))
