"""Record history: which fields each version of a record changed, by whom, from where.

The sync merge reads it to know what the server changed since a device's ``base_version``, and the
child page reads it for the timeline. Values are kept (encrypted) so a conflict can show the base.
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import BigIntKey, UTCDateTime, db, utcnow
from models.crypto import EncryptedJSON

SOURCES = ("api", "web", "device", "system")


class RecordHistory(db.Model):
    __tablename__ = "record_history"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[uuid.UUID]
    version: Mapped[int]
    child_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    fields: Mapped[list] = mapped_column(JSON)
    values: Mapped[dict] = mapped_column(EncryptedJSON)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id"))
    source: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_record_history_record", "record_id", "version", unique=True),)
