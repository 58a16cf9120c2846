"""Attachments on the child's page (``_attachments.html``): the list with download links, the upload
form (the same checks as the resumable API, in one chunk), and a manager's delete."""

import io

from flask import current_app, flash, g, redirect, request, url_for
from flask_babel import gettext

from models import Child, db
from models.attachments import Attachment, attach_whole, delete_attachment, live_attachments, too_large
from models.errors import FieldErrors, Problem
from server.api.attachments import download_response, limits
from server.errors import status_of
from server.web import bp
from server.web.child_pages import child_page
from server.web.forms import errors_of
from server.web.rendering import load_child, parse_uuid
from server.web.session import login_required

ACCEPT = "image/jpeg,image/png,image/webp,application/pdf,audio/ogg,audio/mpeg,audio/mp4,audio/wav,.m4a,.opus"


@bp.app_template_global("attachments_of")
def attachments_of(child) -> dict:
    """What ``_attachments.html`` shows (the page's read is audited as ``child.read``)."""
    return {"items": live_attachments(child.id), "accept": ACCEPT, "max_bytes": limits()["max_bytes"]}


@bp.before_app_request
def keep_uploaded_file_in_memory():
    """The form's file is plaintext: keep it in memory (bounded by the limit), never in a temporary
    file, and let a body as large as the attachment limit through. An app-wide hook, so that it runs
    before the page hooks that read the form (forms.refuse_unstorable_input)."""
    if request.endpoint == "web.attachment_upload":
        request.max_content_length = current_app.config["ATTACHMENT_MAX_BYTES"] + 64 * 1024
        request._get_file_stream = lambda *args, **kwargs: io.BytesIO()


def _load(attachment_id) -> Attachment:
    attachment = db.session.get(Attachment, parse_uuid(attachment_id))
    load_child(attachment.child_id if attachment and attachment.deleted_at is None else None)
    return attachment


@bp.post("/children/<child_id>/attachments")
@login_required("manager", "caseworker")
def attachment_upload(child_id):
    child = load_child(child_id)
    file, most = request.files.get("file"), limits()["max_bytes"]
    try:
        if file is None or not file.filename:
            raise FieldErrors({"file": [gettext("Choose a file to attach.")]})
        content = file.read(most + 1)
        if len(content) > most:
            raise too_large(most)
        attach_whole(child, {"content_type": file.mimetype, "filename": file.filename,
                             "for_field": request.form.get("for_field") == "true"}, content, user=g.user,
                     limits=limits())
    except Problem as exc:
        db.session.commit()  # a refused file's upload is discarded; nothing else was written
        return child_page(db.session.get(Child, child.id), status_of(exc), errors={"attachment": errors_of(exc)})
    db.session.commit()
    flash(gettext("File attached."), "success")
    return redirect(url_for("web.child", child_id=child.id) + "#h-attachments")


@bp.get("/attachments/<attachment_id>")
@login_required("manager", "caseworker")
def attachment_download(attachment_id):
    return download_response(_load(attachment_id), g.user, None, via="web")


@bp.post("/attachments/<attachment_id>/delete")
@login_required("manager")
def attachment_delete(attachment_id):
    attachment = _load(attachment_id)
    delete_attachment(attachment, g.user, via="web")
    db.session.commit()
    flash(gettext("Attachment deleted."), "success")
    return redirect(url_for("web.child", child_id=attachment.child_id) + "#h-attachments")
