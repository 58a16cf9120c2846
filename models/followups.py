"""Follow-ups (visits, reviews, due assessments) and the alerts raised about them."""

import uuid
from datetime import date

from sqlalchemy import JSON, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import SyncedRecord, db
from models.care import ChildRecord, child_seq_index
from models.crypto import EncryptedText
from models.errors import FieldErrors
from models.sensitivity import aggregate, personal


class Followup(ChildRecord, db.Model):
    __tablename__ = "followup"

    kind: Mapped[str] = mapped_column(String(24), info=aggregate())
    due_on: Mapped[date] = mapped_column(Date, info=aggregate())
    status: Mapped[str] = mapped_column(String(16), default="scheduled", info=aggregate())
    completed_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    seen: Mapped[bool | None] = mapped_column(info=aggregate())
    not_seen_reason: Mapped[str | None] = mapped_column(String(24), info=aggregate())
    wellbeing: Mapped[str | None] = mapped_column(String(8), info=aggregate())
    risk_level: Mapped[str | None] = mapped_column(String(8), info=aggregate())
    concerns: Mapped[list | None] = mapped_column(JSON, info=aggregate())
    notes: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    # Set when the scheduler planned it (as opposed to a person scheduling it by hand).
    planned_by_rule: Mapped[str | None] = mapped_column(String(32), info=aggregate())

    # deleted_at and child_id make it covering for the "due and overdue" counts and their join to the
    # child (no table lookup per follow-up); completed_on, for the reports' "done on time".
    __table_args__ = (Index("ix_followup_status_due_on", "status", "due_on", "deleted_at", "child_id",
                            "completed_on"), child_seq_index("followup"))


RESOLUTION_NOTE_MAX = 1000


class Alert(SyncedRecord, db.Model):
    __tablename__ = "alert"

    key: Mapped[str] = mapped_column(String(160), unique=True, info=aggregate(doc="child:rule:due date"))
    rule: Mapped[str] = mapped_column(String(32), info=aggregate())
    severity: Mapped[str] = mapped_column(String(8), info=aggregate())
    child_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("child.id"), index=True, info=aggregate())
    followup_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("followup.id"), info=aggregate())
    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True, info=aggregate())
    due_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    status: Mapped[str] = mapped_column(String(16), default="open", info=aggregate())
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    # What was done, said when resolving. Devices get the alerts addressed to them whether or not they
    # may still see the child, so the note is never dumped (nor pulled); the API and the web add it
    # for readers who may see the child.
    resolution_note: Mapped[str | None] = mapped_column(
        EncryptedText, info=personal(doc="what was done", dumped=False))

    __table_args__ = (Index("ix_alert_recipient_status", "recipient_id", "status"),)


def resolution(user_id, note: str | None) -> dict:
    """The fields resolving an alert writes: who, and the note trimmed (a blank one is none)."""
    note = (note or "").strip() or None
    if note and len(note) > RESOLUTION_NOTE_MAX:
        raise FieldErrors({"note": [f"A note can be at most {RESOLUTION_NOTE_MAX} characters."]})
    return {"status": "resolved", "resolved_by_id": user_id, "resolution_note": note}


def outcome_problems(data: dict, complete: bool = True) -> dict[str, list[str]]:
    """A visit outcome must say whether the child was seen and, if not, why. ``complete=False``
    checks only what a partial edit can contradict on its own."""
    errors = {}
    if complete and data.get("status") == "done":
        if not data.get("completed_on"):
            errors["completed_on"] = ["Required when the follow-up is done."]
        if data.get("kind", "visit") == "visit" and data.get("seen") is None:
            errors["seen"] = ["Say whether the child was seen."]
    if complete and data.get("seen") is False and not data.get("not_seen_reason"):
        errors["not_seen_reason"] = ["Required when the child was not seen."]
    if data.get("seen") is True and data.get("not_seen_reason"):
        errors["not_seen_reason"] = ["Only for a child who was not seen."]
    return errors
