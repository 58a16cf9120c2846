"""Test data factories. Every name here is fictional."""

import functools
import itertools
from datetime import date

from werkzeug.security import generate_password_hash

from models import Actor, User, db
from models.records import create_child, transition

_n = itertools.count(1)
PASSWORD = "correct horse battery"


@functools.cache
def _password_hash() -> str:
    # scrypt is slow on purpose; hash the shared test password once per run, not once per user.
    return generate_password_hash(PASSWORD)


def make_user(role="caseworker", username=None, **kw) -> User:
    user = User(username=username or f"{role}{next(_n)}", role=role, password_hash=_password_hash(), **kw)
    db.session.add(user)
    db.session.flush()
    return user


def make_child(caseworker=None, actor=None, **fields):
    data = {"given_name": "Fictional", "family_name": f"Child{next(_n)}", "sex": "female",
            "district": "Kitgum", "identified_on": date(2025, 1, 10), **fields}
    if caseworker is not None:
        data["caseworker"] = caseworker.username
    return create_child(data, actor or Actor(user=caseworker, source="api"), today=date(2026, 11, 27))


def walk(child, stages, actor, start=date(2025, 1, 10), step_days=10, **kw):
    """Move ``child`` through ``stages`` in order, ``step_days`` apart."""
    from datetime import timedelta

    day = start
    for stage in stages:
        day += timedelta(days=step_days)
        extra = dict(kw)
        if stage == "closed":
            extra.setdefault("closure_reason", "reintegrated")
        if stage in ("missing",) or (stage == "closure_pending"):
            extra.setdefault("reason", "Fictional reason for the test.")
        transition(child, stage, actor, occurred_on=day, today=date(2026, 11, 27), **extra)
    return day


def token_for(client, user) -> dict:
    response = client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}
