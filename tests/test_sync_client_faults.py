"""Faults with a real server process: the reference client pushes a large batch to waitress in its own
process, the server is killed with SIGKILL in the middle of the request (or loses its database for a
while), and the client's retries end with every mutation applied exactly once."""

import sqlite3
import threading
import time
import uuid
from urllib.parse import urlparse

import pytest
from sqlalchemy import func

from models import Child, Consent, RecordHistory, db
from sync.client import SyncClient, UrllibTransport
from tests.factories import make_user
from tests.server_process import ServerProcess, TcpRelay
from tests.sync_devices import PASSPHRASE, enrol_device

pytestmark = pytest.mark.slow


class RecordingTransport(UrllibTransport):
    """Real HTTP, remembering what each attempt ended with: a status (and Retry-After) or an error."""

    def __init__(self, before_send=None):
        super().__init__(timeout=30)
        self.events = []
        self.encodings = []
        self.before_send = before_send

    def __call__(self, method, url, headers, body):
        if self.before_send:
            self.before_send(method, url)
        try:
            status, resp_headers, raw = super().__call__(method, url, headers, body)
        except OSError as exc:
            self.events.append((method, "error", str(exc)))
            raise
        lowered = {k.lower(): v for k, v in resp_headers.items()}
        self.events.append((method, status, lowered.get("retry-after")))
        self.encodings.append((method, status, lowered.get("content-encoding")))
        return status, resp_headers, raw


@pytest.fixture
def caseworker_token(app):
    with app.app_context():
        user = make_user("caseworker")
        token = enrol_device(user)
        db.session.commit()
        return token, user.username


@pytest.fixture
def servers(app, tmp_path):
    started = []

    def start(url=None, **kw):
        server = ServerProcess(url or app.config["SQLALCHEMY_DATABASE_URI"], log_path=tmp_path / "server.log", **kw)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def queue_children(client, username, count):
    """``count`` children, each with a consent: 2 × count mutations, oldest first."""
    for i in range(count):
        child_id = client.record("child", {"sex": ("female", "male")[i % 2], "given_name": f"Fictional{i}",
                                           "family_name": "Fault", "district": "Pader", "caseworker": username,
                                           "identified_on": "2026-11-01"})
        client.record("consent", {"child_id": child_id, "purpose": "services", "given_by": "caregiver",
                                  "given_on": "2026-11-02"})
    return [m["mutation_id"] for m in client.pending()], [m["record_id"] for m in client.pending()]


def assert_exactly_once(app, mutation_ids, record_ids, logged_in_all):
    from models.syncstate import MutationLog

    with app.app_context():
        logged = db.session.execute(
            db.select(MutationLog.mutation_id, func.count())
            .where(MutationLog.mutation_id.in_([uuid.UUID(m) for m in mutation_ids]))
            .group_by(MutationLog.mutation_id)
        ).all()
        assert {str(m) for m, _ in logged} == set(mutation_ids)
        assert all(n == 1 for _, n in logged)
        assert db.session.execute(db.select(func.count()).select_from(MutationLog)).scalar_one() == logged_in_all
        ids = [uuid.UUID(r) for r in record_ids]
        versions = db.session.execute(db.select(Child.version).where(Child.id.in_(ids))).scalars().all()
        versions += db.session.execute(db.select(Consent.version).where(Consent.id.in_(ids))).scalars().all()
        assert len(versions) == len(ids) and set(versions) == {1}
        history = db.session.execute(
            db.select(RecordHistory.record_id, func.count()).where(RecordHistory.record_id.in_(ids))
            .group_by(RecordHistory.record_id)
        ).all()
        assert len(history) == len(ids) and all(n == 1 for _, n in history)


def test_server_killed_mid_push_then_restarted_applies_everything_exactly_once(app, caseworker_token, servers,
                                                                               tmp_path):
    token, username = caseworker_token
    server = servers()

    # Calibrate: how long does the warmed-up server take over a batch of this size? (The very first
    # request pays for imports and connections, so it is not the measure.)
    warmup = SyncClient(server.url, token, str(tmp_path / "warmup.sqlite"), passphrase=PASSPHRASE, batch_size=1000)
    queue_children(warmup, username, 5)
    warmup.push()
    queue_children(warmup, username, 145)
    started = time.monotonic()
    warmup.push()
    batch_seconds = time.monotonic() - started

    killed = threading.Event()

    def kill_during_first_push(method, url):
        if method == "POST" and not killed.is_set():
            killed.set()

            def kill_and_restart():
                time.sleep(batch_seconds * 0.3)  # well inside the request
                server.kill()
                time.sleep(0.5)  # the client meets a dead server for a while
                server.start()

            threading.Thread(target=kill_and_restart, daemon=True).start()

    transport = RecordingTransport(before_send=kill_during_first_push)
    device = SyncClient(server.url, token, str(tmp_path / "device.sqlite"), passphrase=PASSPHRASE,
                        transport=transport, batch_size=1000,
                        backoff_base=0.2, backoff_cap=1.0, max_attempts=40)
    mutation_ids, record_ids = queue_children(device, username, 150)
    assert len(mutation_ids) == 300

    report = device.sync()

    pushes = [e for e in transport.events if e[0] == "POST"]
    assert pushes[0][1] == "error", f"the first push should have died with the server: {pushes[0]}"
    assert pushes[-1][1] == 200 and report.retries >= 1
    assert (report.applied + report.duplicates, report.rejected, device.pending()) == (300, 0, [])
    assert_exactly_once(app, mutation_ids, record_ids, logged_in_all=600)  # with the warm-up's 300
    # Bodies went up gzipped (the server decoded them) and the answers came back gzipped.
    assert ("POST", 200, "gzip") in transport.encodings and ("GET", 200, "gzip") in transport.encodings
    assert len(device.records("child")) == 300  # its 150 and the warm-up's 150, same caseworker


def test_database_unreachable_for_a_while_gives_503_retry_after_then_success(app, caseworker_token, servers,
                                                                             tmp_path, database_url):
    token, username = caseworker_token
    if database_url.startswith("sqlite"):
        # SQLite has no network: another process holding the write lock is how its database becomes
        # unreachable. The server waits 100 ms for the lock (not 10 s), then must answer 503.
        server = servers(busy_ms=100)
        blocker = sqlite3.connect(urlparse(database_url).path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")

        def unblock():
            blocker.execute("ROLLBACK")
            blocker.close()
    else:
        target = urlparse(database_url)
        relay = TcpRelay(target.hostname, target.port or 5432)
        server = servers(url=database_url.replace(target.netloc.split("@")[-1], f"127.0.0.1:{relay.port}"))
        relay.cut()  # after the start, which waits for /healthz to see the database

        def unblock():
            relay.restore()

    transport = RecordingTransport()
    device = SyncClient(server.url, token, str(tmp_path / "device.sqlite"), passphrase=PASSPHRASE,
                        transport=transport,
                        backoff_base=0.2, backoff_cap=1.0, max_attempts=20)
    mutation_ids, record_ids = queue_children(device, username, 50)
    timer = threading.Timer(1.5, unblock)
    timer.start()
    try:
        report = device.sync()
    finally:
        timer.join()

    pushes = [e for e in transport.events if e[0] == "POST"]
    assert pushes[0][1] == 503 and pushes[0][2] is not None, pushes[0]  # with Retry-After
    assert pushes[-1][1] == 200
    assert (report.applied, report.rejected) == (100, 0)
    assert_exactly_once(app, mutation_ids, record_ids, logged_in_all=100)


def test_server_killed_after_commit_before_the_answer_replays_the_stored_results(app, caseworker_token, servers,
                                                                                  tmp_path):
    """The worst case for duplicates: the batch is committed, the answer never reaches the phone."""
    from models.syncstate import SyncBatch

    token, username = caseworker_token
    server = servers(answer_delay_ms=2000)
    seen_committed = threading.Event()

    def kill_once_committed():
        with app.app_context():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if db.session.execute(db.select(func.count()).select_from(SyncBatch)).scalar_one():
                    seen_committed.set()
                    server.kill()  # inside the 2 s the answer is held back
                    break
                db.session.rollback()  # a fresh snapshot on the next look
                time.sleep(0.02)
            db.session.remove()
        time.sleep(0.3)
        server.start()

    started = threading.Event()

    def on_send(method, url):
        if method == "POST" and not started.is_set():
            started.set()
            threading.Thread(target=kill_once_committed, daemon=True).start()

    transport = RecordingTransport(before_send=on_send)
    device = SyncClient(server.url, token, str(tmp_path / "device.sqlite"), passphrase=PASSPHRASE,
                        transport=transport, batch_size=1000,
                        backoff_base=0.2, backoff_cap=1.0, max_attempts=40)
    mutation_ids, record_ids = queue_children(device, username, 100)

    report = device.sync()

    assert seen_committed.is_set()
    pushes = [e for e in transport.events if e[0] == "POST"]
    assert pushes[0][1] == "error" and pushes[-1][1] == 200
    # The replay answered with the stored results of the first time: applied, not applied again.
    assert (report.applied, report.rejected, device.pending()) == (200, 0, [])
    assert_exactly_once(app, mutation_ids, record_ids, logged_in_all=200)
    with app.app_context():
        assert db.session.execute(db.select(func.count()).select_from(SyncBatch)).scalar_one() == 1
