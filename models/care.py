"""Records kept alongside the stages: consent, assessments and services."""

import uuid
from datetime import date

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from models.base import SyncedRecord, db
from models.crypto import EncryptedJSON, EncryptedText
from models.sensitivity import aggregate, personal


def child_seq_index(table: str) -> Index:
    """(child_id, seq): a pull walks each child in scope's changes after the cursor in this index, and
    every lookup of a child's records uses it too (so there is no index on child_id alone)."""
    return Index(f"ix_{table}_child_seq", "child_id", "seq")


class ChildRecord(SyncedRecord):
    """A synced record that belongs to one child."""

    @declared_attr
    def child_id(cls) -> Mapped[uuid.UUID]:
        # Indexed with seq (CHILD_SEQ_INDEX in each table's args), not alone.
        return mapped_column(ForeignKey("child.id"), info=aggregate())

    @declared_attr
    def child(cls) -> Mapped["Child"]:  # noqa: F821
        # Declares the dependency to the unit of work, so a child and its records pending in one flush
        # are inserted parent first (a sync batch flushes many at once).
        return relationship("Child", lazy="select")


class Consent(ChildRecord, db.Model):
    __tablename__ = "consent"
    __table_args__ = (child_seq_index("consent"),)

    purpose: Mapped[str] = mapped_column(String(16), info=aggregate())
    given_by: Mapped[str] = mapped_column(String(16), info=aggregate())
    given_on: Mapped[date] = mapped_column(Date, info=aggregate())
    withdrawn_on: Mapped[date | None] = mapped_column(Date, info=aggregate())


class Assessment(ChildRecord, db.Model):
    __tablename__ = "assessment"
    __table_args__ = (child_seq_index("assessment"),)

    kind: Mapped[str] = mapped_column(String(16), info=aggregate())
    assessed_on: Mapped[date] = mapped_column(Date, info=aggregate())
    scores: Mapped[dict | None] = mapped_column(EncryptedJSON, info=personal())
    risk_level: Mapped[str | None] = mapped_column(String(8), info=aggregate())
    notes: Mapped[str | None] = mapped_column(EncryptedText, info=personal())


class Service(ChildRecord, db.Model):
    __tablename__ = "service"
    __table_args__ = (child_seq_index("service"),)

    type: Mapped[str] = mapped_column(String(24), info=aggregate())
    provider: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    status: Mapped[str] = mapped_column(String(16), default="planned", info=aggregate())
    started_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    ended_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    notes: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
