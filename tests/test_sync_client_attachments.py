"""The reference client uploads an attachment to a real server process through the resumable endpoint,
and finishes it after its connection is cut: an answer lost after the server stored a chunk, and a call
that gave up (Offline) and is made again later."""

import pytest

from models import db
from models.attachments import Attachment
from sync.client import AttachmentRefused, Offline, SyncClient, SyncError, UrllibTransport
from tests import attachment_samples as samples
from tests.factories import make_user
from tests.server_process import ServerProcess
from tests.sync_devices import PASSPHRASE, enrol_device

pytestmark = pytest.mark.slow


class CuttingTransport(UrllibTransport):
    """Real HTTP; ``cut_after`` PATCHes lose their answer (the server got them), ``fail_before``
    PATCHes never leave (the link is down)."""

    def __init__(self, cut_after=(), fail_before=()):
        super().__init__(timeout=30)
        self.patches, self.cut_after, self.fail_before = 0, set(cut_after), set(fail_before)

    def __call__(self, method, url, headers, body):
        if method != "PATCH":
            return super().__call__(method, url, headers, body)
        self.patches += 1
        if self.patches in self.fail_before:
            raise OSError("network: the link is down")
        answer = super().__call__(method, url, headers, body)
        if self.patches in self.cut_after:
            raise OSError("network: connection reset before the answer")
        return answer


@pytest.fixture
def server(app, tmp_path, monkeypatch):
    monkeypatch.setenv("HOMECOMING_ATTACHMENT_DIR", str(tmp_path / "files"))
    process = ServerProcess(app.config["SQLALCHEMY_DATABASE_URI"], log_path=tmp_path / "server.log").start()
    yield process
    process.stop()


def test_an_upload_cut_twice_completes_once_with_the_same_bytes(app, server, tmp_path):
    with app.app_context():
        user = make_user("caseworker")
        token = enrol_device(user)
        db.session.commit()
        username = user.username
    transport = CuttingTransport(cut_after={2}, fail_before={4})
    client = SyncClient(server.url, token, tmp_path / "phone.sqlite", passphrase=PASSPHRASE, transport=transport,
                        max_attempts=1, sleep=lambda s: None)
    child_id = client.record("child", {"sex": "female", "given_name": "Fictional", "district": "Pader",
                                       "caseworker": username, "identified_on": "2026-11-01"})
    data = samples.big_png()
    with pytest.raises(SyncError, match="Push the child first"):
        client.upload_attachment(child_id, data, "image/png")  # the child is not on the server yet
    client.sync()
    with pytest.raises(Offline):
        client.upload_attachment(child_id, data, "image/png", filename="photo.png", chunk_size=40_000)
    # Later, with signal again: the same call asks where the upload stands and sends the rest.
    client.max_attempts = 3
    done = client.upload_attachment(child_id, data, "image/png", filename="photo.png", chunk_size=40_000)
    assert done["size"] == len(data) and done["sha256"] == samples.sha(data) and done["for_field"] is True
    assert transport.patches >= 6
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Attachment)).scalar() == 1
    stored = b"".join(p.read_bytes() for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert data[5000:5032] not in stored
    with pytest.raises(AttachmentRefused) as refused:
        client.upload_attachment(child_id, samples.zip_bomb()[:50_000], "image/png")
    assert refused.value.code == "content_refused"
    client.close()
