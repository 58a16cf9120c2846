"""A child's district comes from the configured list (HOMECOMING_DISTRICTS), on every path: the JSON
API, the sync push and the web form (issue 8, finding 11). Every name here is fictional."""

import uuid

import pytest

from models import Child, User, db, districts
from server import create_app
from tests.conftest import make_config
from tests.factories import make_child, make_user, token_for
from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones
from tests.web_client import post, sign_in, text

ALLOWED = ("Must be one of the districts this programme works in: "
           "Agago, Amuru, Gulu, Kitgum, Lamwo, Nwoya, Omoro, Pader.")


@pytest.fixture
def manager(app, client):
    with app.app_context():
        user = make_user("manager", username="d.manager")
        db.session.commit()
        return token_for(client, user)


def test_the_api_takes_a_listed_district_as_the_list_spells_it_and_refuses_others(client, manager):
    listed = client.post("/api/v1/children", json={"sex": "male", "district": " kitgum "}, headers=manager)
    assert listed.status_code == 201, listed.get_json()
    assert listed.get_json()["district"] == "Kitgum"
    unlisted = client.post("/api/v1/children", json={"sex": "male", "district": "Kampala"}, headers=manager)
    assert unlisted.status_code == 422
    assert unlisted.get_json()["error"]["details"]["fields"] == {"district": [ALLOWED]}
    edited = client.patch(f"/api/v1/children/{listed.get_json()['id']}", json={"district": "Kitgum town"},
                          headers={**manager, "If-Match": '"1"'})
    assert edited.status_code == 422 and edited.get_json()["error"]["details"]["fields"] == {"district": [ALLOWED]}
    # Left out, the district is unknown; sent, it cannot be empty (issue 12).
    for empty in (None, "", "  "):
        refused = client.post("/api/v1/children", json={"sex": "male", "district": empty}, headers=manager)
        assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "validation_error"
    assert client.post("/api/v1/children", json={"sex": "male"}, headers=manager).status_code == 201


def test_a_push_with_an_unlisted_district_is_rejected_naming_the_allowed_ones(app, client):
    phone = people_and_phones(app, client)["cw1"]
    results = phone.push_ok(mutation("child", new_id(), fields=child_fields(district="Gulu")),
                            mutation("child", new_id(), fields=child_fields(district="Nairobi")))
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert results[1]["errors"] == {"district": [ALLOWED]}


def test_the_list_is_the_deployments_own(migrated):
    app = create_app(make_config(migrated, DISTRICTS="Yei, Torit ,Yei"))
    try:
        assert districts.allowed() == ("Yei", "Torit")
        with app.app_context():
            make_user("manager", username="d.ss")
            db.session.commit()
        client = app.test_client()
        with app.app_context():
            headers = token_for(client, db.session.execute(
                db.select(User).filter_by(username="d.ss")).scalar_one())
        assert client.post("/api/v1/children", json={"sex": "female", "district": "Yei"},
                           headers=headers).status_code == 201
        refused = client.post("/api/v1/children", json={"sex": "female", "district": "Kitgum"}, headers=headers)
        assert refused.get_json()["error"]["details"]["fields"]["district"] == [
            "Must be one of the districts this programme works in: Yei, Torit."]
    finally:
        from tests.conftest import empty_tables

        with app.app_context():
            db.session.remove()
            empty_tables()
        districts.configure(None)


@pytest.mark.parametrize("raw, problem", [("x" * 65, "at most 64"), ("Gulu,gulu", "twice")])
def test_a_bad_list_stops_the_app_from_starting(migrated, raw, problem):
    try:
        with pytest.raises(ValueError, match=problem):
            create_app(make_config(migrated, DISTRICTS=raw))
    finally:
        districts.configure(None)


def test_the_web_form_offers_the_list_and_keeps_a_district_from_before_it(app, client):
    with app.app_context():
        user = make_user("manager", username="d.web")
        listed = make_child(user, district="Kitgum")
        legacy = make_child(user, district="Old Kitgum spelling")  # created before the list existed
        db.session.commit()
        listed_id, legacy_id = str(listed.id), str(legacy.id)
    sign_in(client, "d.web")
    page = text(client.get(f"/children/{listed_id}"))
    assert '<select id="e-district" name="district"' in page
    assert all(f'<option value="{name}"' in page for name in districts.DEFAULT)
    assert '<option value="Kitgum" selected>Kitgum</option>' in page

    refused = post(client, f"/children/{listed_id}/edit", {"version": "1", "sex": "female", "district": "Kampala"})
    assert refused.status_code == 422
    assert "Must be one of the districts this programme works in" in text(refused)
    saved = post(client, f"/children/{listed_id}/edit", {"version": "1", "sex": "female", "district": "Gulu"})
    assert saved.status_code == 302

    assert ">Old Kitgum spelling (not in the list)</option>" in text(client.get(f"/children/{legacy_id}"))
    kept = post(client, f"/children/{legacy_id}/edit",
                {"version": "1", "sex": "female", "district": "Old Kitgum spelling", "village": "Fictional"})
    assert kept.status_code == 302
    with app.app_context():
        assert db.session.get(Child, uuid.UUID(listed_id)).district == "Gulu"
        assert db.session.get(Child, uuid.UUID(legacy_id)).district == "Old Kitgum spelling"
