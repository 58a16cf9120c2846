"""Helpers for the sync endpoint tests: people and enrolled devices, and envelopes built by hand the
way a phone would build them. Every name here is fictional."""

import uuid
from datetime import date

from models import User, db
from sync.devices import enroll_device
from tests.factories import make_user

TODAY = date(2026, 11, 27)


def new_id() -> str:
    return str(uuid.uuid4())


def mutation(entity, record_id, op="create", fields=None, base_version=0, mutation_id=None,
             recorded_at="2026-11-20T10:00:00+03:00"):
    return {"mutation_id": mutation_id or new_id(), "entity": entity, "id": str(record_id), "op": op,
            "base_version": base_version, "fields": fields or {}, "recorded_at": recorded_at}


def envelope(*mutations, batch_id=None):
    return {"protocol": 1, "batch_id": batch_id or new_id(), "mutations": list(mutations)}


def child_fields(**kw):
    return {"given_name": "Fictional", "family_name": "Demo-Abalo", "sex": "female", "district": "Kitgum",
            "identified_on": "2026-10-01", **kw}


class Phone:
    """One enrolled device, talking to the Flask test client."""

    def __init__(self, client, token):
        self.client, self.token = client, token
        self.cursor = None

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def push(self, *mutations, batch_id=None, body=None):
        return self.client.post("/api/v1/sync/push", json=body or envelope(*mutations, batch_id=batch_id),
                                headers=self.headers)

    def push_ok(self, *mutations, batch_id=None) -> list[dict]:
        response = self.push(*mutations, batch_id=batch_id)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["results"]

    def pull(self, cursor=None, limit=None, **kw):
        query = {}
        if cursor:
            query["cursor"] = cursor
        if limit:
            query["limit"] = limit
        return self.client.get("/api/v1/sync/pull", query_string=query, headers=self.headers, **kw)

    def pull_all(self, limit=None, from_cursor="stored") -> list[dict]:
        """Pull page by page from the stored cursor; store the cursor after each page."""
        changes = []
        cursor = self.cursor if from_cursor == "stored" else from_cursor
        while True:
            response = self.pull(cursor, limit)
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            changes += page["changes"]
            cursor = self.cursor = page["cursor"]
            if not page["has_more"]:
                return changes


def people_and_phones(app, client, n_caseworkers=2):
    """A manager, caseworkers cw1..cwN and one phone each; returns (usernames, phones)."""
    with app.app_context():
        make_user("manager", username="mgr")
        tokens = {}
        for i in range(1, n_caseworkers + 1):
            user = make_user("caseworker", username=f"cw{i}")
            _device, tokens[f"cw{i}"] = enroll_device(user, f"Phone {i}", by=None)
        db.session.commit()
    return {name: Phone(client, token) for name, token in tokens.items()}


def user_named(username) -> User:
    return db.session.execute(db.select(User).where(User.username == username)).scalar_one()


def get(model, record_id):
    """A record by id, given as the string a device would send."""
    return db.session.get(model, uuid.UUID(str(record_id)))
