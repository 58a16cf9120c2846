"""The JSON API for children: create, read, list, edit with If-Match, errors, roles."""

import uuid

import pytest

from models import db
from tests.factories import make_child, make_user, token_for


@pytest.fixture
def people(app):
    with app.app_context():
        people = {role: make_user(role, username=f"{role}.one") for role in ("admin", "manager", "analyst")}
        people["cw"] = make_user("caseworker", username="cw.one")
        people["cw2"] = make_user("caseworker", username="cw.two")
        db.session.commit()
        return {key: user.username for key, user in people.items()}


@pytest.fixture
def auth(client, app, people):
    from models import User

    def headers(key):
        with app.app_context():
            user = db.session.execute(db.select(User).where(User.username == people[key])).scalar_one()
            return token_for(client, user)

    return headers


NEW_CHILD = {"given_name": "Fictional", "family_name": "Demo-Okot", "sex": "male", "district": "Gulu",
             "birth_year": 2011, "caseworker": "cw.one", "armed_group": "Fictional group",
             "village": "Fictional Atiak"}


def test_create_read_and_list_a_child(client, auth):
    manager = auth("manager")
    response = client.post("/api/v1/children", json=NEW_CHILD, headers=manager)
    assert response.status_code == 201, response.get_json()
    child = response.get_json()
    assert child["stage"] == "identified" and child["phase"] == "demobilisation"
    assert child["version"] == 1 and len(child["case_code"]) == 9
    assert response.headers["ETag"] == '"1"'
    assert child["armed_group"] == "Fictional group"  # managers see restricted fields

    listed = client.get("/api/v1/children?district=Gulu", headers=manager).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == child["id"]
    assert "armed_group" not in listed["items"][0]

    cw = auth("cw")
    seen = client.get(f"/api/v1/children/{child['id']}", headers=cw).get_json()
    assert seen["given_name"] == "Fictional" and "armed_group" not in seen
    by_code = client.get(f"/api/v1/children?case_code={child['case_code'].lower().replace('-', '')}",
                         headers=cw).get_json()
    assert by_code["total"] == 1


def test_roles_scope_children(client, auth, app, people):
    manager = auth("manager")
    child = client.post("/api/v1/children", json=NEW_CHILD, headers=manager).get_json()
    # Another caseworker gets 404, not 403, so ids of others' children do not leak.
    other = client.get(f"/api/v1/children/{child['id']}", headers=auth("cw2"))
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/children", headers=auth("cw2")).get_json()["total"] == 0
    for role in ("analyst", "admin"):
        response = client.get("/api/v1/children", headers=auth(role))
        assert response.status_code == 403
        assert client.get(f"/api/v1/children/{child['id']}", headers=auth(role)).status_code == 403


def test_caseworker_registers_into_own_caseload_only(client, auth):
    cw = auth("cw")
    own = client.post("/api/v1/children", json={"sex": "female"}, headers=cw)
    assert own.status_code == 201 and own.get_json()["caseworker"] == "cw.one"
    other = client.post("/api/v1/children", json={"sex": "female", "caseworker": "cw.two"}, headers=cw)
    assert other.status_code == 403


def test_patch_needs_if_match_and_rejects_stale_versions(client, auth):
    manager = auth("manager")
    child = client.post("/api/v1/children", json=NEW_CHILD, headers=manager).get_json()
    url = f"/api/v1/children/{child['id']}"
    missing = client.patch(url, json={"risk_level": "high"}, headers=manager)
    assert missing.status_code == 428 and missing.get_json()["error"]["code"] == "precondition_required"
    ok = client.patch(url, json={"risk_level": "high"}, headers={**manager, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.get_json()["version"] == 2
    stale = client.patch(url, json={"risk_level": "low"}, headers={**manager, "If-Match": "1"})
    assert stale.status_code == 412
    assert stale.get_json()["error"] == {
        "code": "version_mismatch", "message": stale.get_json()["error"]["message"],
        "details": {"current_version": 2}}
    same = client.patch(url, json={"risk_level": "high"}, headers={**manager, "If-Match": "2"})
    assert same.get_json()["version"] == 2  # nothing changed, no new version


@pytest.mark.parametrize("body, field, message", [
    ({"sex": "girl"}, "sex", "Must be one of"),
    ({}, "sex", "Missing data"),
    ({"sex": "male", "nickname": "x"}, "_unknown", "1 unknown field"),  # counted, never named
    ({"sex": "male", "birth_year": "old"}, "birth_year", "Not a valid integer"),
    ({"sex": "male", "date_of_birth": "2999-01-01"}, "date_of_birth", "future"),
    ({"sex": "male", "date_of_birth": "2012-03-04", "birth_year": 2010}, "birth_year", "Does not match"),
    ({"sex": "male", "caseworker": "nobody"}, "caseworker", "No active caseworker"),
    ({"sex": "male", "given_name": "x" * 121}, "given_name", "Longer than maximum"),
])
def test_validation_errors_name_the_field(client, auth, body, field, message):
    response = client.post("/api/v1/children", json=body, headers=auth("manager"))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert message in " ".join(error["details"]["fields"][field])


def test_envelope_errors_are_json(client, auth):
    manager = auth("manager")
    bad_json = client.post("/api/v1/children", data="{not json", headers={**manager, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.get_json()["error"]["code"] == "malformed_json"
    form = client.post("/api/v1/children", data="sex=male", headers={**manager, "Content-Type": "text/plain"})
    assert form.status_code == 415 and form.get_json()["error"]["code"] == "unsupported_media_type"
    not_a_list = client.post("/api/v1/children", json=["sex"], headers=manager)
    assert not_a_list.status_code == 422
    assert client.get("/api/v1/children").status_code == 401
    assert client.get("/api/v1/children", headers={"Authorization": "Bearer nope"}).get_json()["error"]["code"] == "unauthorized"
    assert client.put("/api/v1/children", json={}, headers=manager).status_code == 405
    missing = client.get(f"/api/v1/children/{uuid.uuid4()}", headers=manager)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/nowhere").get_json()["error"]["code"] == "not_found"
    huge = client.post("/api/v1/children", data=b"x" * (11 * 1024 * 1024),
                       headers={**manager, "Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.get_json()["error"]["code"] == "payload_too_large"


def test_bad_query_parameters(client, auth):
    response = client.get("/api/v1/children?stage=lost&per_page=9999", headers=auth("manager"))
    assert response.status_code == 422
    assert set(response.get_json()["error"]["details"]["fields"]) == {"stage", "per_page"}


def test_login_failures_are_throttled(client, people):
    for _ in range(5):
        assert client.post("/api/v1/auth/token", json={"username": "cw.one", "password": "wrong"}).status_code == 401
    locked = client.post("/api/v1/auth/token", json={"username": "cw.one", "password": "correct horse battery"})
    assert locked.status_code == 401 and "Too many" in locked.get_json()["error"]["message"]


def test_disabled_user_tokens_stop_working(client, auth, app):
    from models import User

    headers = auth("cw")
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "cw.one")).scalar_one()
        user.active = False
        user.token_nonce = "revoked"
        db.session.commit()
    assert client.get("/api/v1/children", headers=headers).status_code == 401


def test_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/v1/children" in spec["paths"]
    assert "/api/v1/children/{child_id}/transitions" in spec["paths"]


def test_encrypted_at_rest(app, ctx):
    from sqlalchemy import text

    child = make_child(given_name="Fictional Secretname", village="Fictional Hill")
    db.session.commit()
    raw = db.session.execute(text("SELECT given_name, village, district FROM child WHERE id = :id"),
                             {"id": child.id if db.engine.dialect.name == "postgresql" else child.id.hex}).one()
    assert "Secretname" not in raw.given_name and raw.given_name.startswith("k1:")
    assert "Hill" not in raw.village
    assert raw.district == "Kitgum"


def test_every_answer_showing_the_restricted_profile_is_audited(client, auth, app):
    from models import AuditEvent

    def restricted_reads():
        with app.app_context():
            return db.session.execute(db.select(db.func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.action == "child.restricted_read")).scalar_one()

    manager = auth("manager")
    child = client.post("/api/v1/children", json=NEW_CHILD, headers=manager).get_json()
    assert restricted_reads() == 1
    empty = client.patch(f"/api/v1/children/{child['id']}", json={}, headers={**manager, "If-Match": "1"})
    assert empty.get_json()["armed_group"] == "Fictional group" and restricted_reads() == 2
    client.get(f"/api/v1/children/{child['id']}", headers=manager)
    assert restricted_reads() == 3
    client.get(f"/api/v1/children/{child['id']}", headers=auth("cw"))  # no restricted fields: no such entry
    assert restricted_reads() == 3
