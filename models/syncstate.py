"""Server-side bookkeeping of the sync protocol (DESIGN §5): batches, the raw mutation log, conflicts.

A batch row stores the results it answered, so a retried batch gets exactly the same answer. Every
mutation a device sends is kept verbatim (encrypted: it carries names) before it is applied, including
the ones that are rejected. A conflict keeps, per field, the value at the device's base version, the
server's value and the device's value, until a manager or the caseworker resolves it.
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import BigIntKey, UTCDateTime, db, utcnow
from models.crypto import EncryptedJSON

MUTATION_STATUSES = ("received", "applied", "duplicate", "conflict", "rejected")
CONFLICT_STATUSES = ("open", "resolved")


class SyncBatch(db.Model):
    __tablename__ = "sync_batch"

    batch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("device.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The per-mutation results as answered (codes, versions, field messages; no field values).
    results: Mapped[list | None] = mapped_column(JSON)
    mutations: Mapped[int] = mapped_column(default=0)
    applied: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    conflicts: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)


class MutationLog(db.Model):
    __tablename__ = "mutation_log"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    mutation_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_batch.batch_id"), index=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("device.id"))
    position: Mapped[int]  # index of the mutation in its batch
    entity: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[uuid.UUID] = mapped_column(index=True)
    op: Mapped[str] = mapped_column(String(8))
    # The mutation exactly as the device sent it.
    payload: Mapped[dict] = mapped_column(EncryptedJSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="received")
    result: Mapped[dict | None] = mapped_column(JSON)


class Conflict(db.Model):
    __tablename__ = "conflict"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    entity: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[uuid.UUID]
    mutation_id: Mapped[uuid.UUID | None]
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    base_version: Mapped[int]
    server_version: Mapped[int]
    fields: Mapped[list] = mapped_column(JSON)  # names of the conflicting fields (not sensitive)
    # {field: value} at the device's base version, on the server, and from the device.
    base_values: Mapped[dict] = mapped_column(EncryptedJSON)
    server_values: Mapped[dict] = mapped_column(EncryptedJSON)
    device_values: Mapped[dict] = mapped_column(EncryptedJSON)
    status: Mapped[str] = mapped_column(String(8), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    # {field: {"choice": "device"|"server"|"value", "value": the value kept}}.
    resolution: Mapped[dict | None] = mapped_column(EncryptedJSON)

    __table_args__ = (Index("ix_conflict_status_child", "status", "child_id"),)
