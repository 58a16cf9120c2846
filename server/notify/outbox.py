"""Queueing alerts for notification: set-based, idempotent, and independent of sending."""

from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, literal, select, true, update

from models import Alert, User, db
from models.base import UTCDateTime, upsert_insert, utcnow
from models.notifications import Notification

N = Notification.__table__
A = Alert.__table__
U = User.__table__


def enabled_channels(config) -> list[str]:
    channels = []
    if config.get("SMTP_HOST"):
        channels.append("email")
    if config.get("WEBHOOK_URL"):
        channels.append("webhook")
    return channels


def enqueue(config, now: datetime | None = None) -> int:
    """Queue every open alert raised within the expiry window that is not queued yet on each enabled
    channel (e-mail only for recipients with an address). Returns how many rows were queued."""
    now = now or utcnow()
    window = timedelta(hours=config["NOTIFY_EXPIRE_HOURS"])
    at = bindparam("now", now, type_=UTCDateTime())
    expires = bindparam("expires", now + window, type_=UTCDateTime())
    since = now - window
    queued = 0
    for channel in enabled_channels(config):
        reachable = U.c.email.is_not(None) & (U.c.email != "") if channel == "email" else true()
        rows = (
            select(A.c.id, A.c.recipient_id, literal(channel), literal("pending"), literal(0), at, expires, at)
            .select_from(A.join(U, U.c.id == A.c.recipient_id))
            .where(A.c.status == "open", A.c.deleted_at.is_(None), A.c.created_at >= since, U.c.active.is_(True),
                   reachable,
                   ~exists().where(and_(N.c.alert_id == A.c.id, N.c.channel == channel)))
        )
        insert = upsert_insert(N)
        result = db.session.execute(
            insert.from_select(["alert_id", "recipient_id", "channel", "status", "attempts", "next_attempt_at",
                                "expires_at", "created_at"], rows)
            .on_conflict_do_nothing(index_elements=["alert_id", "channel"]).returning(N.c.id)
        )
        queued += len(result.all())
    return queued


def expire(now: datetime) -> int:
    result = db.session.execute(
        update(N).where(N.c.status == "pending", N.c.expires_at <= now).values(status="expired"))
    return result.rowcount or 0


def due_digests(now: datetime) -> list[tuple]:
    """(recipient, channel) pairs with something to send now."""
    return list(db.session.execute(
        select(N.c.recipient_id, N.c.channel).distinct()
        .where(N.c.status == "pending", N.c.next_attempt_at <= now, N.c.expires_at > now)
        .order_by(N.c.recipient_id, N.c.channel)
    ))


def claim(recipient_id, channel: str, now: datetime) -> list[int]:
    """Lock this recipient's pending rows on this channel for the current transaction.

    On PostgreSQL the rows are locked with FOR UPDATE SKIP LOCKED, so a second dispatcher skips what
    the first is sending; on SQLite the UPDATE takes the database's write lock, so a second dispatcher
    waits and then finds the rows sent. Either way the rows are marked sent in the same transaction,
    and no digest goes out twice.
    """
    candidates = (select(N.c.id).where(N.c.recipient_id == recipient_id, N.c.channel == channel,
                                        N.c.status == "pending", N.c.next_attempt_at <= now, N.c.expires_at > now)
                  .with_for_update(skip_locked=True))
    result = db.session.execute(
        update(N).where(N.c.id.in_(candidates.scalar_subquery()), N.c.status == "pending",
                        N.c.next_attempt_at <= now)
        .values(attempts=N.c.attempts + 1).returning(N.c.id)
    )
    return sorted(row[0] for row in result)


def mark_sent(ids: list[int], digest_id, now: datetime) -> None:
    db.session.execute(update(N).where(N.c.id.in_(ids)).values(status="sent", sent_at=now, digest_id=digest_id,
                                                               last_error=None))


def mark_cancelled(ids: list[int]) -> None:
    if ids:
        db.session.execute(update(N).where(N.c.id.in_(ids)).values(status="cancelled"))


def mark_failed(ids: list[int], error: str, now: datetime, retry_seconds: int) -> None:
    """Try again later: the wait doubles with each attempt, up to an hour."""
    rows = db.session.execute(select(N.c.id, N.c.attempts).where(N.c.id.in_(ids))).all()
    for attempts, group in _by_attempts(rows).items():
        wait = min(retry_seconds * 2 ** max(attempts - 1, 0), 3600)
        db.session.execute(update(N).where(N.c.id.in_(group)).values(
            next_attempt_at=now + timedelta(seconds=wait), last_error=error[:120]))


def _by_attempts(rows) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for row_id, attempts in rows:
        groups.setdefault(attempts, []).append(row_id)
    return groups
