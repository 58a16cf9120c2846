"""Attachments on the child's page: the list, the upload form, downloads and a manager's delete."""

import io

from models import AuditEvent, db
from tests import attachment_samples as samples
from tests.factories import make_child, make_user
from tests.test_attachments import app  # noqa: F401  (the app with its own attachment folder and limits)
from tests.web_client import form_token, sign_in, text


def attach(client, child_id, data, filename, content_type, **form):
    return client.post(f"/children/{child_id}/attachments", content_type="multipart/form-data", data={
        "csrf_token": form_token(client), "file": (io.BytesIO(data), filename, content_type), **form})


def test_the_child_page_lists_uploads_downloads_and_deletes(app, client, monkeypatch):  # noqa: F811
    import werkzeug.wrappers.request as werkzeug_request

    def no_temporary_file(*args, **kwargs):
        raise AssertionError("the uploaded file went to werkzeug's spool (a temporary file past 500 kB)")

    monkeypatch.setattr(werkzeug_request, "default_stream_factory", no_temporary_file)
    with app.app_context():
        cw = make_user("caseworker", username="cw.w")
        make_user("manager", username="boss.w")
        make_user("caseworker", username="cw.w2")
        child_id = str(make_child(cw).id)
        db.session.commit()
    sign_in(client, "cw.w")
    data = samples.pdf()[:-7] + b"\n" * 250_000 + b"\n%%EOF\n"  # past werkzeug's 500 kB of memory, as a form
    done = attach(client, child_id, data, "consent form.pdf", "application/pdf", for_field="true")
    assert done.status_code == 302
    page = text(client.get(f"/children/{child_id}"))
    assert "consent form.pdf" in page and "on devices" in page and "Delete" not in page.split("h-attachments")[1]
    link = page.split('href="/attachments/')[1].split('"')[0]
    got = client.get(f"/attachments/{link}")
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Disposition"].startswith("attachment")
    # hostile and oversized files: the page again, with the reason
    html = attach(client, child_id, b"<html><script>alert(1)</script></html>", "scan.pdf", "application/pdf")
    assert html.status_code == 422 and "markup" in text(html)
    big = attach(client, child_id, b"\x00" * 300_001, "big.png", "image/png")
    assert big.status_code == 413 and "300,000" in text(big)
    empty = client.post(f"/children/{child_id}/attachments", data={"csrf_token": form_token(client)})
    assert empty.status_code == 422 and "Choose a file" in text(empty)
    other = app.test_client()
    sign_in(other, "cw.w2")
    assert other.get(f"/attachments/{link}").status_code == 404
    assert other.post(f"/children/{child_id}/attachments", data={"csrf_token": form_token(other)}).status_code == 404
    boss = app.test_client()
    sign_in(boss, "boss.w")
    gone = boss.post(f"/attachments/{link}/delete", data={"csrf_token": form_token(boss)})
    assert gone.status_code == 302
    assert "consent form.pdf" not in text(boss.get(f"/children/{child_id}"))
    assert client.get(f"/attachments/{link}").status_code == 404
    with app.app_context():
        actions = db.session.execute(db.select(AuditEvent.action).where(AuditEvent.action.like("attachment.%"))
                                     .order_by(AuditEvent.id)).scalars().all()
        assert actions == ["attachment.create", "attachment.download", "attachment.delete"]
