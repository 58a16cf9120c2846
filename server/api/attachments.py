"""Attachments through the JSON API, and the resumable upload for devices, the field app and API users
(docs/api.md, "Attachments"; docs/sync-protocol.md, "Uploading attachments").

Either bearer works: a user's API token (managers and caseworkers) or a device token (the device acts
for its caseworker). Out of scope answers as absent (404). Devices see and fetch only the attachments
marked ``for_field``; every download is audited (``attachment.download``, never the filename).
"""

import uuid

from flask import Response, current_app, g, request, stream_with_context
from marshmallow import fields, validate

from models import Child, audit, db
from models.access import CHILD_READERS, can_see_child
from models.attachments import (
    RECORD_MODELS,
    Attachment,
    append_chunk,
    attachment_body,
    delete_attachment,
    find_upload,
    finish_upload,
    live_attachments,
    plaintext,
    start_upload,
    too_large,
    upload_body,
)
from models.errors import Problem
from models.schemas import Strict
from server.api import Blueprint, raw_body
from server.api.common import not_found
from server.auth import bearer_token, check_user
from server.errors import ApiError
from server.whole_numbers import whole_number

blp = Blueprint("attachments", __name__, url_prefix="/api/v1", description="Attachments and resumable uploads")
CHUNK_TYPES = ("application/offset+octet-stream", "application/octet-stream")
# The download answer runs nothing, frames nothing, and is saved, never shown inline.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


class UploadFields(Strict):
    content_type = fields.String(required=True)
    size = fields.Integer(required=True, strict=True)
    sha256 = fields.String(required=True)
    filename = fields.String(allow_none=True, validate=validate.Length(max=255))
    record_entity = fields.String(allow_none=True, validate=validate.OneOf(RECORD_MODELS))
    record_id = fields.UUID(allow_none=True)
    for_field = fields.Boolean(load_default=False)


def limits() -> dict:
    config = current_app.config
    return {"max_bytes": config["ATTACHMENT_MAX_BYTES"], "max_count": config["ATTACHMENT_MAX_PER_CHILD"],
            "upload_hours": config["ATTACHMENT_UPLOAD_HOURS"]}


def caller():
    """(user, device): a device token is ``<device id>.<secret>``, a user's API token is not."""
    from server.sync_endpoint import current_device

    head = (bearer_token() or "").partition(".")[0]
    try:
        uuid.UUID(head)
    except ValueError:
        return check_user(CHILD_READERS), None
    device = current_device()
    g.user = device.user
    return device.user, device


def _child(user, child_id) -> Child:
    child = db.session.get(Child, child_id)
    if child is None or not can_see_child(user, child):
        raise not_found("child")
    return child


def _attachment(user, device, attachment_id) -> Attachment:
    attachment = db.session.get(Attachment, attachment_id)
    if (attachment is None or attachment.deleted_at is not None or (device is not None and not attachment.for_field)):
        raise not_found("attachment")
    _child(user, attachment.child_id)
    return attachment


def _upload(user, upload_id):
    upload = find_upload(upload_id)
    if upload is None or upload.user_id != user.id:
        db.session.commit()  # the purge of expired uploads
        raise not_found("upload")
    _child(user, upload.child_id)
    return upload


def _with_offset(body: dict, status=200):
    return body, status, {"Upload-Offset": str(body["offset"]), "Upload-Length": str(body["size"])}


@blp.get("/children/<uuid:child_id>/attachments")
def child_attachments(child_id):
    user, device = caller()
    child = _child(user, child_id)
    items = live_attachments(child.id, for_field_only=device is not None)
    audit("attachment.list", actor=user, device=device, child_id=child.id, shown=len(items), ip=request.remote_addr)
    db.session.commit()
    return {"items": [attachment_body(a) for a in items]}


@blp.post("/children/<uuid:child_id>/attachments/uploads")
def create_upload(child_id):
    """Start an upload: body ``UploadFields``. The caller is checked before the body is read."""
    user, device = caller()
    child = _child(user, child_id)
    from server.sync_endpoint import json_body  # devices send it gzip-compressed, as a push

    body = json_body() if request.content_length or request.headers.get("Content-Encoding") else {}
    data = UploadFields().load(body if isinstance(body, dict) else {})
    upload = start_upload(child, data, user=user, device=device, limits=limits())
    db.session.commit()
    body = upload_body(upload)
    return {**body, "chunk_max_bytes": current_app.config["ATTACHMENT_CHUNK_MAX_BYTES"]}, 201, {
        "Location": f"/api/v1/attachments/uploads/{upload.id}", "Upload-Offset": "0"}


@blp.get("/attachments/uploads/<uuid:upload_id>")
def upload_state(upload_id):
    """Where an upload stands (also as HEAD): the offset to resume from."""
    user, _ = caller()
    upload = _upload(user, upload_id)
    db.session.commit()
    return _with_offset(upload_body(upload))


def _chunk(upload) -> bytes:
    if request.mimetype not in CHUNK_TYPES:
        raise ApiError(415, "unsupported_media_type", "Send a chunk as 'Content-Type: application/offset+octet-stream'"
                       f" (got '{request.mimetype or 'none'}').")
    chunk_max = current_app.config["ATTACHMENT_CHUNK_MAX_BYTES"]
    if (request.content_length or 0) > chunk_max:
        raise too_large(chunk_max, "The chunk")
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding '{encoding}' is not supported; send gzip "
                       "or nothing.")
    data = request.get_data(cache=False)
    if encoding == "gzip":
        from server.sync_endpoint import _gunzip  # bounded: a gzip bomb stops at the limit, answered 413

        data = _gunzip(data, min(chunk_max, upload.size - upload.received))
    return data


@blp.route("/attachments/uploads/<uuid:upload_id>", methods=["PATCH", "PUT"])
@raw_body
def upload_chunk(upload_id):
    """The bytes from ``Upload-Offset``; a wrong offset is 409 with the upload's offset."""
    user, _ = caller()
    upload = _upload(user, upload_id)
    data = _chunk(upload)
    offset = whole_number((request.headers.get("Upload-Offset") or "").strip())
    if offset is None:
        raise ApiError(400, "bad_request", "Send 'Upload-Offset: <bytes already sent>' with each chunk.",
                       {"offset": upload.received})
    append_chunk(upload, offset, data)
    db.session.commit()
    return _with_offset(upload_body(upload))


@blp.post("/attachments/uploads/<uuid:upload_id>/finish")
def finish(upload_id):
    user, _ = caller()
    upload = _upload(user, upload_id)
    try:
        attachment = finish_upload(upload)
    except Problem:
        db.session.commit()  # a refused file is discarded with its upload (the client starts again)
        raise
    db.session.commit()
    return attachment_body(attachment), 201


@blp.delete("/attachments/uploads/<uuid:upload_id>")
def abandon(upload_id):
    from models.attachments import discard_upload

    user, _ = caller()
    discard_upload(_upload(user, upload_id))
    db.session.commit()
    return "", 204


@blp.get("/attachments/<uuid:attachment_id>")
def get_attachment(attachment_id):
    user, device = caller()
    attachment = _attachment(user, device, attachment_id)
    audit("attachment.read", actor=user, device=device, child_id=attachment.child_id, target=attachment.id,
          ip=request.remote_addr)
    db.session.commit()
    return attachment_body(attachment), 200, {"ETag": f'"{attachment.sha256}"'}


@blp.get("/attachments/<uuid:attachment_id>/content")
def download(attachment_id):
    user, device = caller()
    return download_response(_attachment(user, device, attachment_id), user, device, via="api")


@blp.delete("/attachments/<uuid:attachment_id>")
def remove(attachment_id):
    user, device = caller()
    if device is not None:
        raise ApiError(403, "forbidden", "Attachments are deleted by a manager, on the web or with an API token.")
    attachment = _attachment(user, None, attachment_id)
    if not user.is_manager:
        raise ApiError(403, "manager_only", "Only a manager may delete an attachment.")
    sent = (request.headers.get("If-Match") or "").strip().removeprefix("W/").strip('"')
    if not sent:
        raise ApiError(428, "precondition_required", "Send 'If-Match: \"<sha256>\"' (the ETag of the attachment) "
                       "to say which file you mean to delete.")
    if sent != attachment.sha256:
        raise ApiError(412, "version_mismatch", "If-Match does not name this attachment's file (its ETag).")
    delete_attachment(attachment, user, via="api")
    db.session.commit()
    return "", 204


EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf",
              "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/wav": "wav"}


def download_response(attachment: Attachment, user, device, *, via: str) -> Response:
    """The file, audited first (kind and size, never its name), sent as a download the browser neither
    sniffs nor renders."""
    audit("attachment.download", actor=user, device=device, child_id=attachment.child_id, target=attachment.id,
          kind=attachment.kind, size=attachment.size, via=via, ip=request.remote_addr)
    db.session.commit()
    chunks = plaintext(attachment)
    first = next(chunks)  # a missing or damaged file fails here, as an error answer, not a cut download
    response = Response(stream_with_context(_chain(first, chunks)), mimetype=attachment.content_type)
    name = attachment.filename or f"attachment-{str(attachment.id)[:8]}.{EXTENSIONS[attachment.content_type]}"
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers["Content-Length"] = str(attachment.size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "no-store"
    response.set_etag(attachment.sha256)
    return response


def _chain(first, rest):
    yield first
    yield from rest
