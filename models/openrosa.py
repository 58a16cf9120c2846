"""The raw log of OpenRosa submissions (ODK Collect, KoboCollect, Enketo; docs/odk.md).

A submission is kept as it came, before it is applied, like the sync mutation log: its XML (encrypted:
it carries names) and the name, size, type and SHA-256 of each media file (never the file itself).
Its ``meta/instanceID`` is the key: the same id with the same XML is a retry, with other XML a 409.

A programme's own questions (outside the record groups) are also kept with the child they are about,
in ``child_extra_field``: the latest answer per child, form and question (docs/odk.md).
"""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import UTCDateTime, db, upsert_insert, utcnow
from models.crypto import EncryptedText
from models.sensitivity import aggregate, personal

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
    # The child it is about, once known (no foreign key: a refused registration's child never existed),
    # so de-identification finds the XML that names the child.
    child_id: Mapped[uuid.UUID | None] = mapped_column(index=True)


class ChildExtraField(db.Model):
    """One answer to a programme's own question, kept with the child: the latest received per child,
    form and question. Shown on the child's page; never sent to devices (no sync entity); deleted when
    the child is de-identified (models/retention.py)."""

    __tablename__ = "child_extra_field"

    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), primary_key=True, info=aggregate())
    form_id: Mapped[str] = mapped_column(String(64), primary_key=True, info=aggregate())
    # The question's path inside the form's instance: ``household_size``, ``household/members[2]/age``.
    field_name: Mapped[str] = mapped_column(String(200), primary_key=True, info=aggregate())
    value: Mapped[str] = mapped_column(EncryptedText, info=personal())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())
    instance_id: Mapped[str] = mapped_column(ForeignKey("openrosa_submission.instance_id"), index=True,
                                             info=aggregate())


def keep_extra_fields(child_id, form_id: str, instance_id: str, values: dict[str, str], *,
                      replaces: str | None = None) -> None:
    """Keep one submission's extra answers with the child, in the caller's transaction: one upsert for
    all of them. An edit (``replaces``: the submission it replaces) first drops the answers that
    submission kept, so an answer emptied in the edit is gone too."""
    T = ChildExtraField.__table__
    if replaces:
        db.session.execute(T.delete().where(T.c.instance_id == replaces, T.c.child_id == child_id))
    if not values:
        return
    now = utcnow()
    insert = upsert_insert(T)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=["child_id", "form_id", "field_name"],
        set_={"value": insert.excluded.value, "recorded_at": now, "instance_id": instance_id}),
        [{"child_id": child_id, "form_id": form_id, "field_name": name, "value": value, "recorded_at": now,
          "instance_id": instance_id} for name, value in values.items()])


def extra_fields_of(child_id) -> list[ChildExtraField]:
    return list(db.session.execute(
        db.select(ChildExtraField).where(ChildExtraField.child_id == child_id)
        .order_by(ChildExtraField.form_id, ChildExtraField.field_name)).scalars())
