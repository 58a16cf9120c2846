"""Attachments through the resumable upload API: every accepted type, the limits, hostile files,
resuming after a cut, scope, devices, downloads and their audit, encryption on disk, deletion and
retention."""

from pathlib import Path

import pytest

from models import AuditEvent, User, attachment_storage, db, utcnow
from models.attachments import Attachment, AttachmentUpload
from models.retention import deidentify
from sync.devices import enroll_device, revoke_device
from tests import attachment_samples as samples
from tests.factories import make_child, make_user, token_for

API = "/api/v1"


@pytest.fixture
def app(app, tmp_path):
    """The suite's app with its own attachment folder and small limits."""
    app.config.update(ATTACHMENT_DIR=str(tmp_path / "files"), ATTACHMENT_MAX_PER_CHILD=3,
                      ATTACHMENT_MAX_BYTES=300_000, ATTACHMENT_CHUNK_MAX_BYTES=100_000)
    attachment_storage.configure(app.config)
    return app


@pytest.fixture
def world(app, client):
    with app.app_context():
        cw, other, boss = make_user("caseworker", username="cw.a"), make_user("caseworker", username="cw.b"), \
            make_user("manager", username="boss.a")
        child = make_child(cw)
        device, token = enroll_device(cw, "Test phone", by=boss)
        db.session.commit()
        ids = {"child": str(child.id), "device": device.id}
        users = {u.username: u for u in (cw, other, boss)}
    return {**ids, "cw": token_for(client, users["cw.a"]), "other": token_for(client, users["cw.b"]),
            "boss": token_for(client, users["boss.a"]), "phone": {"Authorization": f"Bearer {token}"}}


def create(client, headers, child, data, content_type="image/png", **extra):
    return client.post(f"{API}/children/{child}/attachments/uploads", headers=headers, json={
        "content_type": content_type, "size": len(data), "sha256": samples.sha(data),
        "filename": "photo of Fictional.png", **extra})


def send(client, headers, upload, offset, data, **extra_headers):
    return client.patch(f"{API}/attachments/uploads/{upload}", data=data, headers={
        **headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **extra_headers})


def upload(client, headers, child, data, content_type="image/png", chunk=40_000, **extra):
    created = create(client, headers, child, data, content_type, **extra)
    assert created.status_code == 201, created.get_json()
    upload_id = created.get_json()["id"]
    for offset in range(0, len(data), chunk):
        sent = send(client, headers, upload_id, offset, data[offset:offset + chunk])
        assert sent.status_code == 200, sent.get_json()
    return client.post(f"{API}/attachments/uploads/{upload_id}/finish", headers=headers)


def error(response):
    return response.get_json()["error"]


@pytest.mark.parametrize("content_type", sorted(samples.VALID))
def test_every_accepted_type_uploads_and_downloads_unchanged(client, world, content_type):
    data = samples.VALID[content_type]()
    done = upload(client, world["cw"], world["child"], data, content_type)
    assert done.status_code == 201, done.get_json()
    body = done.get_json()
    assert body["size"] == len(data) and body["content_type"] == content_type
    got = client.get(f"{API}/attachments/{body['id']}/content", headers=world["boss"])
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"] and "default-src 'none'" in got.headers[
        "Content-Security-Policy"]


def test_a_cut_upload_resumes_from_the_offset_the_server_reports(client, world, app):
    data = samples.big_png()
    created = create(client, world["cw"], world["child"], data).get_json()
    upload_id = created["id"]
    assert send(client, world["cw"], upload_id, 0, data[:70_000]).status_code == 200
    # The connection drops: the client asks where it stands (HEAD, as tus does; GET gives the same).
    head = client.head(f"{API}/attachments/uploads/{upload_id}", headers=world["cw"])
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "70000"
    assert head.headers["Upload-Length"] == str(len(data))
    early = client.post(f"{API}/attachments/uploads/{upload_id}/finish", headers=world["cw"])
    assert early.status_code == 409 and error(early)["details"]["offset"] == 70_000
    # A chunk resent from an old offset is refused with the current one.
    stale = send(client, world["cw"], upload_id, 40_000, data[40_000:80_000])
    assert stale.status_code == 409 and error(stale)["code"] == "offset_mismatch"
    assert error(stale)["details"]["offset"] == 70_000
    for offset in range(70_000, len(data), 90_000):
        assert send(client, world["cw"], upload_id, offset, data[offset:offset + 90_000]).status_code == 200
    done = client.post(f"{API}/attachments/uploads/{upload_id}/finish", headers=world["cw"])
    assert done.status_code == 201, done.get_json()
    got = client.get(f"{API}/attachments/{done.get_json()['id']}/content", headers=world["cw"])
    assert got.data == data
    with app.app_context():
        assert db.session.execute(db.select(AttachmentUpload)).first() is None


def test_files_on_disk_are_ciphertext_only(client, world, app):
    data = samples.big_png()
    created = create(client, world["cw"], world["child"], data).get_json()
    assert send(client, world["cw"], created["id"], 0, data[:90_000]).status_code == 200
    folder = Path(app.config["ATTACHMENT_DIR"])
    probes = [data[i:i + 32] for i in range(1000, 90_000, 7_919)]

    def assert_sealed():
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files
        for path in files:
            stored = path.read_bytes()
            assert not any(probe in stored for probe in probes), path
            assert b"Fictional" not in stored
    assert_sealed()  # the partial upload
    for offset in range(90_000, len(data), 90_000):
        send(client, world["cw"], created["id"], offset, data[offset:offset + 90_000])
    assert client.post(f"{API}/attachments/uploads/{created['id']}/finish", headers=world["cw"]).status_code == 201
    assert_sealed()  # the stored file
    with app.app_context():
        row = db.session.execute(db.text("SELECT filename, file_key FROM attachment")).one()
        assert "Fictional" not in row.filename and row.file_key.startswith("k1:")


@pytest.mark.parametrize("name, content_type, data, says", [
    ("a PDF that is really HTML", "application/pdf",
     b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "markup"),
    ("a PDF with a script inside", "application/pdf",
     b"%PDF-1.4\n<html><script>alert(1)</script>\n%%EOF\n", "<script"),
    ("a PDF that runs JavaScript", "application/pdf",
     b"%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >> endobj\n%%EOF\n", "/javascript"),
    ("a JPEG with HTML appended", "image/jpeg", samples.jpeg() + b"<html><script>alert(1)</script></html>",
     "after the end"),
    ("a JPEG with a script in its comment", "image/jpeg", samples.jpeg()[:2] + b"\xff\xfe\x00\x22<script>alert(1)</script>//"
     + b"\x00" * 5 + samples.jpeg()[2:], "<script"),
    ("a JPEG with bytes appended", "image/jpeg", samples.jpeg() + b"\x00trailing junk", "after the end"),
    ("a GIFAR-style PNG with a ZIP appended", "image/png", samples.png() + samples.zip_bomb()[:2000]
     + b"PK\x05\x06" + b"\x00" * 18, "after the end"),
    ("a ZIP in a PNG's private chunk", "image/png", samples.png(filler=b"PK\x05\x06" + b"\x00" * 18), "ZIP"),
    ("a zip bomb declared as a JPEG", "image/jpeg", samples.zip_bomb(), "ZIP archive"),
    ("a zip bomb declared as a PDF", "application/pdf", samples.zip_bomb(), "ZIP archive"),
    ("a PNG declared as a JPEG", "image/jpeg", samples.png(), "image/png"),
    ("a decompression bomb", "image/png", samples.png(width=100_000, height=100_000), "pixels"),
    ("a GIF", "image/png", b"GIF89a" + b"\x00" * 40, "GIF"),
    ("a truncated PNG", "image/png", samples.png()[:-12], "truncated"),
    ("a WAV that lies about its size", "audio/wav", samples.wav()[:-100], "truncated"),
])
def test_hostile_files_are_refused_and_discarded(client, world, app, name, content_type, data, says):
    if len(data) > 300_000:
        pytest.fail("sample too large for the test's limit")
    done = upload(client, world["cw"], world["child"], data, content_type)
    assert done.status_code == 422, (name, done.get_json())
    assert error(done)["code"] == "content_refused" and says.lower() in error(done)["message"].lower(), name
    with app.app_context():
        assert db.session.execute(db.select(Attachment)).first() is None
        assert db.session.execute(db.select(AttachmentUpload)).first() is None
    assert not [p for p in Path(app.config["ATTACHMENT_DIR"]).rglob("*") if p.is_file()]


def test_a_gzip_bomb_chunk_is_413_at_the_limit(client, world):
    data = samples.png()
    created = create(client, world["cw"], world["child"], data).get_json()
    bomb = send(client, world["cw"], created["id"], 0, samples.gzip_bomb(), **{"Content-Encoding": "gzip"})
    assert bomb.status_code == 413 and error(bomb)["details"]["limit_bytes"] == len(data)
    # gzip that inflates to the right bytes is fine
    import gzip

    ok = send(client, world["cw"], created["id"], 0, gzip.compress(data), **{"Content-Encoding": "gzip"})
    assert ok.status_code == 200 and ok.get_json()["offset"] == len(data)


def test_limits_empty_too_large_count_wrong_hash_and_chunk_size(client, world):
    empty = create(client, world["cw"], world["child"], b"")
    assert empty.status_code == 422 and "size" in error(empty)["details"]["fields"]
    huge = client.post(f"{API}/children/{world['child']}/attachments/uploads", headers=world["cw"], json={
        "content_type": "image/png", "size": 300_001, "sha256": "0" * 64})
    assert huge.status_code == 413 and error(huge)["details"]["limit_bytes"] == 300_000
    assert "300,000" in error(huge)["message"]
    bad_type = create(client, world["cw"], world["child"], b"x", content_type="text/html")
    assert bad_type.status_code == 422 and "content_type" in error(bad_type)["details"]["fields"]
    data = samples.png()
    created = create(client, world["cw"], world["child"], data).get_json()
    over = send(client, world["cw"], created["id"], 0, data + b"more")
    assert over.status_code == 413
    big_chunk = send(client, world["cw"], created["id"], 0, b"\x00" * 100_001)
    assert big_chunk.status_code == 413 and error(big_chunk)["details"]["limit_bytes"] == 100_000
    wrong_type = client.patch(f"{API}/attachments/uploads/{created['id']}", data=data,
                              headers={**world["cw"], "Upload-Offset": "0", "Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    no_offset = client.patch(f"{API}/attachments/uploads/{created['id']}", data=data,
                             headers={**world["cw"], "Content-Type": "application/offset+octet-stream"})
    assert no_offset.status_code == 400
    # wrong hash: declared for other bytes
    lying = client.post(f"{API}/children/{world['child']}/attachments/uploads", headers=world["cw"], json={
        "content_type": "image/png", "size": len(data), "sha256": samples.sha(b"other")}).get_json()
    send(client, world["cw"], lying["id"], 0, data)
    mismatch = client.post(f"{API}/attachments/uploads/{lying['id']}/finish", headers=world["cw"])
    assert mismatch.status_code == 422 and error(mismatch)["code"] == "hash_mismatch"
    assert client.get(f"{API}/attachments/uploads/{lying['id']}", headers=world["cw"]).status_code == 404
    # count: one upload under way + two attachments = 3, the limit
    assert upload(client, world["cw"], world["child"], samples.jpeg(), "image/jpeg").status_code == 201
    assert upload(client, world["cw"], world["child"], samples.pdf(), "application/pdf").status_code == 201
    full = create(client, world["cw"], world["child"], samples.wav(), "audio/wav")
    assert full.status_code == 422 and error(full)["code"] == "too_many_attachments"
    assert error(full)["details"]["limit"] == 3


def test_scope_devices_and_revocation(client, world, app):
    data = samples.png()
    assert create(client, world["other"], world["child"], data).status_code == 404
    field_photo = upload(client, world["phone"], world["child"], data, for_field=True)
    assert field_photo.status_code == 201, field_photo.get_json()
    office_scan = upload(client, world["cw"], world["child"], samples.pdf(), "application/pdf").get_json()
    photo = field_photo.get_json()
    # Devices see and fetch only what is marked for the field.
    listed = client.get(f"{API}/children/{world['child']}/attachments", headers=world["phone"]).get_json()
    assert [a["id"] for a in listed["items"]] == [photo["id"]]
    assert client.get(f"{API}/attachments/{office_scan['id']}/content", headers=world["phone"]).status_code == 404
    assert client.get(f"{API}/attachments/{photo['id']}/content", headers=world["phone"]).data == data
    both = client.get(f"{API}/children/{world['child']}/attachments", headers=world["cw"]).get_json()["items"]
    assert len(both) == 2
    # Another caseworker: as if nothing existed.
    assert client.get(f"{API}/attachments/{photo['id']}/content", headers=world["other"]).status_code == 404
    assert client.get(f"{API}/children/{world['child']}/attachments", headers=world["other"]).status_code == 404
    # An upload belongs to whoever started it.
    started = create(client, world["phone"], world["child"], data).get_json()
    assert client.get(f"{API}/attachments/uploads/{started['id']}", headers=world["boss"]).status_code == 404
    with app.app_context():
        from models import Device

        revoke_device(db.session.get(Device, world["device"]), by=None, wipe=True)
        db.session.commit()
    revoked = send(client, world["phone"], started["id"], 0, data)
    assert revoked.status_code == 403 and error(revoked)["code"] == "device_revoked"
    assert revoked.get_json()["wipe"] is True


def test_downloads_are_audited_without_the_filename_and_managers_delete(client, world, app):
    done = upload(client, world["cw"], world["child"], samples.png()).get_json()
    assert client.get(f"{API}/attachments/{done['id']}/content", headers=world["boss"]).status_code == 200
    with app.app_context():
        events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action.like("attachment.%"))
                                    .order_by(AuditEvent.id)).scalars().all()
        assert [e.action for e in events][:2] == ["attachment.create", "attachment.download"]
        download = events[-1]
        assert str(download.child_id) == world["child"] and download.target == done["id"]
        assert download.actor_id == db.session.execute(db.select(User.id).where(User.username == "boss.a")).scalar()
        assert all("Fictional" not in str(e.details) and "photo" not in str(e.details) for e in events)
    assert client.delete(f"{API}/attachments/{done['id']}", headers=world["cw"]).status_code == 403
    assert client.delete(f"{API}/attachments/{done['id']}", headers=world["boss"]).status_code == 428
    stale = client.delete(f"{API}/attachments/{done['id']}", headers={**world["boss"], "If-Match": '"abc"'})
    assert stale.status_code == 412
    etag = client.get(f"{API}/attachments/{done['id']}", headers=world["boss"]).headers["ETag"]
    assert client.delete(f"{API}/attachments/{done['id']}", headers={**world["boss"], "If-Match": etag}).status_code == 204
    assert client.get(f"{API}/attachments/{done['id']}/content", headers=world["boss"]).status_code == 404
    assert not [p for p in Path(app.config["ATTACHMENT_DIR"]).rglob("*") if p.is_file()]
    with app.app_context():
        row = db.session.get(Attachment, __import__("uuid").UUID(done["id"]))
        assert row.deleted_at is not None and row.file_key is None


def test_expired_uploads_are_purged_on_access(client, world, app):
    data = samples.png()
    started = create(client, world["cw"], world["child"], data).get_json()
    send(client, world["cw"], started["id"], 0, data[:10])
    with app.app_context():
        row = db.session.get(AttachmentUpload, __import__("uuid").UUID(started["id"]))
        row.expires_at = utcnow()
        db.session.commit()
    assert client.get(f"{API}/attachments/uploads/{started['id']}", headers=world["cw"]).status_code == 404
    assert not [p for p in Path(app.config["ATTACHMENT_DIR"]).rglob("*") if p.is_file()]


def test_deidentification_removes_files_and_their_personal_metadata(client, world, app):
    done = upload(client, world["cw"], world["child"], samples.big_png()).get_json()
    create(client, world["cw"], world["child"], samples.png())  # an upload under way
    with app.app_context():
        deidentify([__import__("uuid").UUID(world["child"])])
        db.session.commit()
        row = db.session.get(Attachment, __import__("uuid").UUID(done["id"]))
        assert (row.filename, row.sha256, row.file_key) == (None, None, None) and row.deleted_at is not None
        assert db.session.execute(db.select(AttachmentUpload)).first() is None
    assert not [p for p in Path(app.config["ATTACHMENT_DIR"]).rglob("*") if p.is_file()]
