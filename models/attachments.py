"""Attachments (issue 13): scanned consent forms, certificates, tracing photos, recorded statements,
on a child or on one of its records (docs/referrals.md, "Attachments").

The database keeps metadata only; the file is sealed (models/attachment_files.py) in the store
(models/attachment_storage.py). Every file arrives through a resumable upload: created with its declared
size, type and SHA-256, filled by chunks at stated offsets (each chunk sealed as it lands), and finished
when complete, when the whole file's hash and content (models/attachment_content.py) are checked
before the attachment exists. The web form is the same path in one chunk.

Uploads left unfinished expire after ``ATTACHMENT_UPLOAD_HOURS``; expired ones are purged on access
(each new upload and each look-up of an upload purges them), so no scheduler job is needed.

Functions flush, never commit; files are written before the commit and removed after a failure.
"""

import hashlib
import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from models import attachment_content, attachment_files, attachment_storage
from models.audit import audit
from models.base import UTCDateTime, db, utcnow
from models.care import Assessment, Consent, Service
from models.crypto import EncryptedText
from models.errors import FieldErrors, ManagerOnly, Problem, RecordDeidentified
from models.followups import Followup
from models.lifecycle import StageTransition
from models.referrals import Referral
from models.sensitivity import aggregate, personal

RECORD_MODELS = {"consent": Consent, "stage_transition": StageTransition, "assessment": Assessment,
                 "service": Service, "followup": Followup, "referral": Referral}
SHA256 = re.compile(r"[0-9a-f]{64}")
PURGE_BATCH = 50


class _Described:
    """What an attachment and an upload both say of the file: whose, on what, which type, how big."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True, info=aggregate())
    record_entity: Mapped[str | None] = mapped_column(String(24), info=aggregate())
    record_id: Mapped[uuid.UUID | None] = mapped_column(info=aggregate())
    content_type: Mapped[str] = mapped_column(String(40), info=aggregate())
    size: Mapped[int] = mapped_column(BigInteger, info=aggregate())
    filename: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    for_field: Mapped[bool] = mapped_column(Boolean, default=False, info=aggregate())
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id"), info=aggregate())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())


class Attachment(_Described, db.Model):
    __tablename__ = "attachment"

    kind: Mapped[str] = mapped_column(String(8), info=aggregate())
    # A hash confirms a copy of a known photo: erased with the file.
    sha256: Mapped[str | None] = mapped_column(String(64), info=personal())
    file_key: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=aggregate())


class AttachmentUpload(_Described, db.Model):
    """An upload in progress: what was declared, how much has arrived, its sealed parts' lengths."""

    __tablename__ = "attachment_upload"

    sha256: Mapped[str] = mapped_column(String(64), info=aggregate())
    file_key: Mapped[str] = mapped_column(EncryptedText, info=personal())
    received: Mapped[int] = mapped_column(BigInteger, default=0, info=aggregate())
    parts: Mapped[list] = mapped_column(JSON, default=list, info=aggregate())
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, info=aggregate())


def _file_key(attachment_id) -> str:
    return f"files/{attachment_id}"


def _part_key(upload_id, index: int) -> str:
    return f"uploads/{upload_id}/{index:06d}"


def too_large(limit: int, what="The file") -> Problem:
    return Problem("payload_too_large", f"{what} is larger than the limit of {limit:,} bytes.",
                   {"limit_bytes": limit})


def _live_count(child_id) -> int:
    attached = db.session.execute(select(func.count()).select_from(Attachment).where(
        Attachment.child_id == child_id, Attachment.deleted_at.is_(None))).scalar_one()
    pending = db.session.execute(select(func.count()).select_from(AttachmentUpload).where(
        AttachmentUpload.child_id == child_id)).scalar_one()
    return attached + pending


def _check_record(child, entity, record_id) -> dict[str, list[str]]:
    if entity is None and record_id is None:
        return {}
    model = RECORD_MODELS.get(entity)
    if model is None:
        return {"record_entity": [f"Attach to one of: {', '.join(RECORD_MODELS)} (or to the child alone)."]}
    record = db.session.get(model, record_id) if record_id else None
    if record is None or record.child_id != child.id or getattr(record, "deleted_at", None) is not None:
        return {"record_id": [f"No {entity} of this child with this id."]}
    return {}


def start_upload(child, data: dict, *, user, device=None, limits: dict, now=None) -> AttachmentUpload:
    """A new upload for ``child``. ``data``: content_type, size, sha256, filename, record_entity,
    record_id, for_field. ``limits``: max_bytes, max_count, upload_hours. Flushes."""
    now = now or utcnow()
    purge_expired(now)
    declared = (data.get("content_type") or "").split(";")[0].strip().lower()
    data = {**data, "content_type": attachment_content.ALIASES.get(declared, declared)}
    if child.deidentified_at is not None:
        raise RecordDeidentified("This case was de-identified: nothing can be attached to it.")
    size, problems = data.get("size"), {}
    if data.get("content_type") not in attachment_content.TYPES:
        problems["content_type"] = [f"Accepted types: {', '.join(attachment_content.TYPES)}."]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        problems["size"] = ["The file is empty: send a size of at least 1 byte."]
    if not SHA256.fullmatch(str(data.get("sha256") or "")):
        problems["sha256"] = ["The SHA-256 of the whole file, as 64 lower-case hexadecimal digits."]
    if len(data.get("filename") or "") > 255:
        problems["filename"] = ["At most 255 characters."]
    problems.update(_check_record(child, data.get("record_entity"), data.get("record_id")))
    if problems:
        raise FieldErrors(problems)
    if size > limits["max_bytes"]:
        raise too_large(limits["max_bytes"])
    if _live_count(child.id) >= limits["max_count"]:
        raise Problem("too_many_attachments", f"This child already has {limits['max_count']} attachments "
                      "(or uploads under way), the most allowed. A manager may delete one first.",
                      {"limit": limits["max_count"]})
    upload = AttachmentUpload(
        child_id=child.id, record_entity=data.get("record_entity"), record_id=data.get("record_id"),
        content_type=data["content_type"], size=size, sha256=data["sha256"],
        filename=(data.get("filename") or "").strip() or None, for_field=bool(data.get("for_field")),
        file_key=attachment_files.new_key(), received=0, parts=[], user_id=user.id,
        device_id=getattr(device, "id", None), created_at=now,
        expires_at=now + timedelta(hours=limits["upload_hours"]))
    db.session.add(upload)
    db.session.flush()
    return upload


def find_upload(upload_id, now=None) -> AttachmentUpload | None:
    purge_expired(now or utcnow())
    return db.session.get(AttachmentUpload, upload_id)


def append_chunk(upload: AttachmentUpload, offset: int, data: bytes) -> int:
    """Store the bytes sent at ``offset``; return the new offset. A chunk at another offset than the
    one reached is refused with that offset (the client resumes from there). Flushes."""
    if offset != upload.received:
        raise Problem("offset_mismatch", f"This upload is at offset {upload.received}; send the bytes from "
                      "there.", {"offset": upload.received})
    if upload.received + len(data) > upload.size:
        raise too_large(upload.size, "The upload")
    if not data:
        return upload.received
    index = len(upload.parts)
    sealed = attachment_files.seal_part(upload.file_key, upload.id, index, offset, data)
    attachment_storage.current().write(_part_key(upload.id, index), [sealed])
    upload.parts = [*upload.parts, len(data)]
    upload.received += len(data)
    db.session.flush()
    return upload.received


class _Parts:
    """Random access to an upload's plaintext, one decrypted part in memory at a time."""

    def __init__(self, upload):
        self.upload, self.store = upload, attachment_storage.current()
        self.starts, start = [], 0
        for length in upload.parts:
            self.starts.append(start)
            start += length
        self.cached = (None, b"")

    def part(self, index: int) -> bytes:
        if self.cached[0] != index:
            blob = self.store.read(_part_key(self.upload.id, index))
            self.cached = (index, attachment_files.open_part(self.upload.file_key, self.upload.id, index,
                                                              self.starts[index], blob))
        return self.cached[1]

    def __iter__(self):
        for index in range(len(self.starts)):
            yield self.part(index)

    def read(self, offset: int, length: int) -> bytes:
        out, offset = [], max(0, offset)
        end = min(offset + length, self.upload.received)
        for index, start in enumerate(self.starts):
            stop = start + self.upload.parts[index]
            if stop <= offset or start >= end:
                continue
            data = self.part(index)
            out.append(data[max(0, offset - start):end - start])
        return b"".join(out)


def finish_upload(upload: AttachmentUpload) -> Attachment:
    """Check the complete upload (hash, then content) and make it an attachment. A file that fails is
    discarded with its upload: the client starts again. Flushes."""
    if upload.received != upload.size:
        raise Problem("upload_incomplete", f"The upload has {upload.received} of {upload.size} bytes; send the "
                      "rest first.", {"offset": upload.received, "size": upload.size})
    parts = _Parts(upload)
    digest, scan = hashlib.sha256(), attachment_content.MarkupScan(pdf=upload.content_type == "application/pdf")
    try:
        for piece in parts:
            digest.update(piece)
            scan.feed(piece)
        if digest.hexdigest() != upload.sha256:
            raise Problem("hash_mismatch", "The file's SHA-256 is not the one declared: it changed or was "
                          "damaged on the way. Start a new upload.",
                          {"declared": upload.sha256, "received": digest.hexdigest()})
        kind = attachment_content.check(upload.content_type, upload.size, parts.read)
        scan.verdict()
    except Problem:
        discard_upload(upload)
        raise
    attachment = Attachment(
        id=uuid.uuid4(), child_id=upload.child_id, record_entity=upload.record_entity, record_id=upload.record_id,
        kind=kind, content_type=upload.content_type, size=upload.size, sha256=upload.sha256,
        filename=upload.filename, file_key=upload.file_key, for_field=upload.for_field,
        uploaded_by_id=upload.user_id, device_id=upload.device_id)
    store = attachment_storage.current()
    store.write(_file_key(attachment.id), attachment_files.seal_stream(attachment.file_key, attachment.id, parts))
    db.session.add(attachment)
    audit("attachment.create", actor=upload.user_id, device=upload.device_id, child_id=upload.child_id,
          target=attachment.id, kind=kind, content_type=attachment.content_type, size=attachment.size,
          record_entity=attachment.record_entity)
    discard_upload(upload)
    return attachment


def discard_upload(upload: AttachmentUpload) -> None:
    attachment_storage.current().delete_prefix(f"uploads/{upload.id}/")
    db.session.delete(upload)
    db.session.flush()


def purge_expired(now) -> int:
    """Remove uploads past their expiry, a few at a time (called on access). Flushes."""
    expired = db.session.execute(select(AttachmentUpload).where(AttachmentUpload.expires_at <= now)
                                 .limit(PURGE_BATCH)).scalars().all()
    for upload in expired:
        discard_upload(upload)
    return len(expired)


def attach_whole(child, data: dict, content: bytes, *, user, limits: dict) -> Attachment:
    """A file that arrived whole (the web form): the same checks, through one upload of one chunk."""
    upload = start_upload(child, {**data, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()},
                          user=user, limits=limits)
    append_chunk(upload, 0, content)
    return finish_upload(upload)


def live_attachments(child_id, *, for_field_only=False) -> list[Attachment]:
    stmt = select(Attachment).where(Attachment.child_id == child_id, Attachment.deleted_at.is_(None))
    if for_field_only:
        stmt = stmt.where(Attachment.for_field.is_(True))
    return list(db.session.execute(stmt.order_by(Attachment.created_at)).scalars())


def plaintext(attachment: Attachment):
    """The file's bytes, chunk by chunk (the caller audits the download)."""
    store = attachment_storage.current()
    source = store.open(_file_key(attachment.id))
    try:
        yield from attachment_files.open_stream(attachment.file_key, attachment.id, source)
    finally:
        source.close()


def delete_attachment(attachment: Attachment, user, *, via: str) -> None:
    """A manager's soft delete: the metadata stays (who uploaded what kind, when), the file and its key
    go. Flushes."""
    if user.role != "manager":
        raise ManagerOnly("Only a manager may delete an attachment.")
    attachment_storage.current().delete(_file_key(attachment.id))
    attachment.deleted_at, attachment.file_key = utcnow(), None
    db.session.flush()
    audit("attachment.delete", actor=user, child_id=attachment.child_id, target=attachment.id, via=via)


def erase_for_children(child_ids) -> int:
    """Retention: the files of these children go, with their uploads under way; the metadata loses
    its personal values (filename, hash, key) and is marked deleted. Flushes; returns files removed."""
    store, now = attachment_storage.current(), utcnow()
    rows = db.session.execute(select(Attachment).where(Attachment.child_id.in_(child_ids))).scalars().all()
    for attachment in rows:
        store.delete(_file_key(attachment.id))
        attachment.filename = attachment.sha256 = attachment.file_key = None
        attachment.deleted_at = attachment.deleted_at or now
    for upload in db.session.execute(select(AttachmentUpload).where(
            AttachmentUpload.child_id.in_(child_ids))).scalars().all():
        discard_upload(upload)
    db.session.flush()
    return len(rows)


def attachment_body(attachment: Attachment) -> dict:
    return {"id": str(attachment.id), "child_id": str(attachment.child_id), "record_entity": attachment.record_entity,
            "record_id": str(attachment.record_id) if attachment.record_id else None, "kind": attachment.kind,
            "content_type": attachment.content_type, "size": attachment.size, "sha256": attachment.sha256,
            "filename": attachment.filename, "for_field": attachment.for_field,
            "created_at": attachment.created_at.isoformat()}


def upload_body(upload: AttachmentUpload) -> dict:
    return {"id": str(upload.id), "child_id": str(upload.child_id), "offset": upload.received, "size": upload.size,
            "content_type": upload.content_type, "expires_at": upload.expires_at.isoformat()}
