"""Validation messages never repeat a key the client chose (issue 8, finding 11): an unknown field's
name or a dict entry's key could be a child's name, and a sync push's results are stored in clear.
Every name here is fictional."""

import importlib
import inspect
import json
import pkgutil

import pytest
from marshmallow import Schema
from sqlalchemy import text

from models import db
from models.field_messages import ClientSchema, public_messages
from models.schemas import ChildFields
from tests.factories import make_child, make_user, token_for
from tests.sync_server_helpers import child_fields, envelope, mutation, new_id, people_and_phones

NAME = "Akello_Grace"  # what a careless client might put in a key: a (fictional) child's name
DICT_KEY = "Atim_Nancy"


def assert_no_client_keys(value):
    dumped = json.dumps(value, default=str)
    assert NAME not in dumped and DICT_KEY not in dumped, dumped


def stored_results() -> list:
    batches = db.session.execute(text("SELECT results FROM sync_batch")).scalars().all()
    logged = db.session.execute(text("SELECT result FROM mutation_log")).scalars().all()
    return [*batches, *logged]


def test_a_push_with_unknown_fields_and_bad_dict_keys_echoes_and_stores_none_of_them(app, client):
    phone = people_and_phones(app, client)["cw1"]
    child_id = new_id()
    results = phone.push_ok(
        mutation("child", child_id, fields=child_fields()),
        mutation("child", new_id(), fields=child_fields(**{NAME: "x", f"{NAME}_2": "y"})),
        mutation("assessment", new_id(), fields={"child_id": child_id, "kind": "health",
                                                 "assessed_on": "2026-11-01", "scores": {DICT_KEY: "high"}}),
        mutation("stage_transition", new_id(), fields={"child_id": child_id, "to_stage": "registered",
                                                       "occurred_on": "2026-11-02",
                                                       "details": {DICT_KEY * 7: "x"}}),
    )
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "rejected"]
    assert results[1]["errors"] == {"_unknown": ["2 unknown fields (names are not repeated back)."]}
    assert results[2]["errors"] == {"scores": ["1 entry, value: Not a valid number."]}
    assert results[3].get("errors") == {"details": ["1 entry, key: Longer than maximum length 64."]}
    assert_no_client_keys(results)
    with app.app_context():
        stored = stored_results()
        assert len(stored) == 5
        assert_no_client_keys([r if isinstance(r, dict | list) else json.loads(r) for r in stored if r])


def test_an_envelope_with_unknown_keys_is_refused_without_naming_them(app, client):
    phone = people_and_phones(app, client)["cw1"]
    body = envelope(mutation("child", new_id(), fields=child_fields()))
    body[NAME] = 1
    body["mutations"][0][DICT_KEY] = 2
    body["mutations"][0]["fields"] = {DICT_KEY * 7: "x"}
    response = phone.push(body=body)
    assert response.status_code == 422
    fields = response.get_json()["error"]["details"]["fields"]
    assert fields["_unknown"] == ["1 unknown field (names are not repeated back)."]
    assert fields["mutations"]["0"]["_unknown"] == ["1 unknown field (names are not repeated back)."]
    assert fields["mutations"]["0"]["fields"] == ["1 entry, key: Length must be between 1 and 64."]
    assert_no_client_keys(response.get_json())


def test_the_api_answers_422_without_naming_unknown_fields_or_dict_keys(app, client):
    with app.app_context():
        manager = make_user("manager")
        child_id = make_child(caseworker=manager).id
        db.session.commit()
        headers = token_for(client, manager)
    created = client.post("/api/v1/children", json={"sex": "male", NAME: "x"}, headers=headers)
    assert created.status_code == 422
    assert created.get_json()["error"]["details"]["fields"] == {
        "_unknown": ["1 unknown field (names are not repeated back)."]}
    scored = client.post(f"/api/v1/children/{child_id}/assessments", headers=headers,
                         json={"kind": "health", "assessed_on": "2026-11-01", "scores": {DICT_KEY: "high"},
                               NAME: 1})
    assert scored.status_code == 422
    assert scored.get_json()["error"]["details"]["fields"] == {
        "scores": ["1 entry, value: Not a valid number."],
        "_unknown": ["1 unknown field (names are not repeated back)."]}
    queried = client.get("/api/v1/children", query_string={"page": "x", NAME: "1"}, headers=headers)
    assert_no_client_keys(queried.get_json())
    for response in (created, scored):
        assert_no_client_keys(response.get_json())


def test_a_conflict_resolution_does_not_name_fields_it_does_not_have(app, client):
    from models import Actor
    from models.errors import FieldErrors
    from models.syncstate import Conflict
    from sync.conflicts import resolve_conflict

    with app.app_context():
        manager = make_user("manager")
        child = make_child(caseworker=manager)
        conflict = Conflict(child_id=child.id, entity="child", record_id=child.id, base_version=1,
                            server_version=1, fields=["village"], base_values={"village": None},
                            server_values={"village": None}, device_values={"village": None})
        db.session.add(conflict)
        db.session.flush()
        with pytest.raises(FieldErrors) as refused:
            resolve_conflict(conflict, {"village": "server", NAME: "device"}, Actor(user=manager, source="api"))
        assert refused.value.errors == {"_unknown": ["1 of the fields sent is not a field of this conflict."]}
        db.session.rollback()


def test_messages_already_rewritten_are_left_as_they_are():
    messages = {"sex": ["Missing data for required field."], NAME: ["Unknown field."]}
    once = public_messages(messages, ChildFields())
    assert public_messages(once, ChildFields()) == once == {
        "sex": ["Missing data for required field."], "_unknown": ["1 unknown field (names are not repeated back)."]}


def _our_schemas():
    for package in ("models", "sync", "server"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, Schema) and cls.__module__ == module.__name__:
                    yield cls


def test_every_schema_of_ours_words_its_refusals_through_client_schema():
    schemas = list(_our_schemas())
    assert len(schemas) > 15
    assert [cls.__qualname__ for cls in schemas if not issubclass(cls, ClientSchema)] == []
