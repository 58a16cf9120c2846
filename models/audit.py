"""The append-only audit log (DESIGN §7): who read or changed which child, logins, exports, devices,
sync batches. Details hold counts and identifiers, never a child's personal values."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import BigIntKey, UTCDateTime, db, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id"))
    action: Mapped[str] = mapped_column(String(40), index=True)
    child_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    target: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))


def audit(action: str, *, actor=None, device=None, child_id=None, target=None, ip=None, **details):
    """Add an audit event to the current session (committed with the work it describes)."""
    event_ = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", actor),
        device_id=getattr(device, "id", device),
        child_id=child_id,
        target=None if target is None else str(target),
        details=details or None,
        ip=ip,
    )
    db.session.add(event_)
    return event_


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("the audit log is append-only")
