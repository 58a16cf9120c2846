"""Throttling sign-in attempts by client and account together, with a growing delay (finding 5).

An account is never locked: locking after five failures let anyone shut a manager out by typing
their username wrongly five times. Instead each *(client, typed username)* pair has its own counter.
A few failures are free; after that each one doubles the wait before that pair may try again, up to
``MAX_DELAY``. The client is its network address, or, when the browser carries the signed
"known client" cookie that a successful sign-in of that username set, that cookie's random id: a
person who has signed in from this browser before keeps their own counter, which someone guessing
from elsewhere (or from the same office address) cannot run up. Clients that are not known also
share a per-username counter with a higher allowance, so guessing from many addresses is slowed too;
known clients are exempt from it, so it cannot lock out the real user either.

The counters live in the database, so every worker and host behind a load balancer sees the same
ones, with no Redis to run (a field office has one server). Keys are SHA-256 digests: a password
typed into the username field is not kept in clear. The counters are keyed by the *typed* username,
whether or not it exists, and the refusal reads the same for both, so they reveal no usernames.
"""

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import String, update
from sqlalchemy.orm import Mapped, mapped_column

from models.base import UTCDateTime, db, upsert_insert

FREE_FAILURES = 3           # per client and username, before any wait
FREE_FAILURES_ACCOUNT = 20  # per username over every client that is not known
MAX_DELAY = timedelta(minutes=15)
TOO_MANY = "Too many attempts. Wait {seconds} seconds and try again."


class LoginThrottle(db.Model):
    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def throttle_keys(username: str, address: str | None, known_client: str | None) -> list[tuple[str, int]]:
    """The counters an attempt counts against, each with its free allowance."""
    name = username.lower()
    if known_client:
        return [(_digest("known", known_client, name), FREE_FAILURES)]
    return [(_digest("addr", address or "-", name), FREE_FAILURES),
            (_digest("account", name), FREE_FAILURES_ACCOUNT)]


def delay_after(failures: int, free: int) -> timedelta:
    """No wait for the first ``free`` failures, then 2, 4, 8 … seconds, at most ``MAX_DELAY``."""
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free + 1, 20)), MAX_DELAY)


def wait_needed(keys: list[tuple[str, int]], now: datetime) -> timedelta:
    """How long this attempt must wait before its password is even checked (zero: go ahead)."""
    rows = db.session.execute(db.select(LoginThrottle).where(LoginThrottle.key.in_([k for k, _ in keys])))
    waits = [row.retry_at - now for row in rows.scalars() if row.retry_at and row.retry_at > now]
    return max(waits, default=timedelta(0))


def record_failure(keys: list[tuple[str, int]], now: datetime) -> None:
    # One upsert per counter, so two first failures at once (two workers) both count instead of one
    # failing on the primary key.
    T = LoginThrottle.__table__
    for key, free in keys:
        failures = db.session.execute(
            upsert_insert(T).values(key=key, failures=1, updated_at=now)
            .on_conflict_do_update(index_elements=["key"], set_={"failures": T.c.failures + 1, "updated_at": now})
            .returning(T.c.failures)).scalar_one()
        wait = delay_after(failures, free)
        db.session.execute(update(T).where(T.c.key == key).values(retry_at=now + wait if wait else None))


def record_success(keys: list[tuple[str, int]]) -> None:
    """The right password clears this client's counter (not the account-wide one: others' guesses stay
    counted)."""
    key, _ = keys[0]
    row = db.session.get(LoginThrottle, key)
    if row is not None:
        db.session.delete(row)
        db.session.flush()
