"""The notification outbox: one row per alert and channel (e-mail, webhook), written when the alert is
found and sent later by the dispatcher (server/notify/). Keeping the two apart means a notification
survives a crash or an unreachable mail server: the row stays pending and is retried until it is sent
or expires. The unique (alert, channel) pair means no alert is ever queued twice on a channel."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import BigIntKey, UTCDateTime, db, utcnow

CHANNELS = ("email", "webhook")
# pending -> sent | expired | cancelled (the alert was resolved before it went out)
NOTIFICATION_STATUSES = ("pending", "sent", "expired", "cancelled")


class Notification(db.Model):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert.id"))
    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The digest (one message to one recipient) it went out in; also the message's idempotency id.
    digest_id: Mapped[uuid.UUID | None]
    # The kind of failure only (an exception class or an HTTP status): never message content.
    last_error: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("alert_id", "channel"),
        Index("ix_notification_status_next_attempt_at", "status", "next_attempt_at"),
    )
