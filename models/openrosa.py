"""The raw log of OpenRosa submissions (ODK Collect, KoboCollect, Enketo; docs/odk.md).

A submission is kept as it came, before it is applied, like the sync mutation log: its XML (encrypted:
it carries names) and the name, size, type and SHA-256 of each media file (never the file itself).
Its ``meta/instanceID`` is the key: the same id with the same XML is a retry, with other XML a 409.
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import UTCDateTime, db, utcnow
from models.crypto import EncryptedText

SUBMISSION_STATUSES = ("received", "applied", "rejected")


class OpenRosaSubmission(db.Model):
    __tablename__ = "openrosa_submission"

    instance_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("device.id"), index=True)
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[str | None] = mapped_column(String(32))
    # An edit in Collect names the submission it replaces; ``root_id`` is the first of the chain, whose
    # instanceID the records' ids are derived from.
    deprecated_id: Mapped[str | None] = mapped_column(String(80))
    root_id: Mapped[str] = mapped_column(String(80))
    xml_sha256: Mapped[str] = mapped_column(String(64))
    xml: Mapped[str] = mapped_column(EncryptedText)
    media: Mapped[list] = mapped_column(JSON, default=list)  # [{name, size, type, sha256}]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="received")
    # What was answered: the mutation results or the refusal (codes and messages, no values).
    outcome: Mapped[dict | None] = mapped_column(JSON)
