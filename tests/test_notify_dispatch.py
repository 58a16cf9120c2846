"""Notifications through a real SMTP server (aiosmtpd) and a real local webhook receiver: queued apart
from sending, retried with backoff while the server is down, sent once as one digest per recipient,
signed, and free of names, villages and notes."""

import hashlib
import hmac
import json
import socket
import threading
from datetime import date, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from config import RULE_DEFAULTS
from models import Actor, alerting, db, utcnow
from models.notifications import Notification
from models.planning import after_changes
from server import create_app
from server.notify.dispatch import dispatch
from server.notify.outbox import enqueue
from tests.conftest import empty_tables, make_config
from tests.factories import make_child, make_user, walk

SECRET = "fictional-webhook-secret"
PERSONAL = ("Fictional", "Demo-Secretname", "Fictional Atiak", "Fictional notes", "Fictional armed group")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def ports():
    return {"smtp": free_port(), "hook": free_port()}


@pytest.fixture
def notify_app(migrated, ports):
    app = create_app(make_config(
        migrated, SMTP_HOST="127.0.0.1", SMTP_PORT=ports["smtp"], SMTP_TIMEOUT_SECONDS=5,
        WEBHOOK_URL=f"http://127.0.0.1:{ports['hook']}/hook", WEBHOOK_SECRET=SECRET, NOTIFY_RETRY_SECONDS=30))
    yield app
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def seed(today: date) -> dict:
    """Two caseworkers (one without e-mail) and a manager; three children whose first visits are
    overdue; alerts raised by one scan. Returns what the test needs to know."""
    cw = make_user("caseworker", username="cw.mail", email="cw.mail@example.org")
    quiet = make_user("caseworker", username="cw.nomail")
    boss = make_user("manager", username="boss.mail", email="boss.mail@example.org")
    codes = []
    for owner in (cw, cw, quiet):
        child = make_child(owner, given_name="Fictional", family_name="Demo-Secretname",
                           village="Fictional Atiak", armed_group="Fictional armed group")
        walk(child, ["registered", "assessed", "reunified", "follow_up"], Actor(user=owner, source="api"))
        codes.append(child.case_code)
        db.session.commit()
        after_changes({child.id}, today=today, rules=RULE_DEFAULTS)
    db.session.commit()
    created = list(alerting.scan(today, RULE_DEFAULTS).created)
    db.session.commit()
    return {"codes": codes, "alerts": created, "boss": boss}


def test_smtp_down_then_up_every_message_arrives_once_without_names(notify_app, ports):
    config = notify_app.config
    with notify_app.app_context():
        facts = seed(date(2025, 3, 10))
        # cw.mail: 2 overdue visits; cw.nomail: 1 (no e-mail, so webhook only); boss: 3 escalations.
        assert len(facts["alerts"]) == 6
        queued = enqueue(config)
        db.session.commit()
        assert queued == 5 + 6  # e-mail for the five alerts of people with an address, webhook for all
        assert enqueue(config) == 0  # queueing again changes nothing

        t0 = utcnow()
        # Nothing listens on either port yet: every digest fails and stays pending with a backoff.
        first = dispatch(config, now=t0)
        assert first.sent == [] and len(first.failed) == 2 + 3  # e-mail to 2 people, webhook to 3
        rows = db.session.execute(db.select(Notification)).scalars().all()
        assert {(r.status, r.attempts) for r in rows} == {("pending", 1)}
        assert all(r.next_attempt_at == t0 + timedelta(seconds=30) for r in rows)
        assert all(r.last_error and "Fictional" not in r.last_error for r in rows)
        # Before the backoff ends nothing is tried again.
        assert dispatch(config, now=t0 + timedelta(seconds=10)).failed == []
        # Still down at the second try: the wait doubles.
        dispatch(config, now=t0 + timedelta(seconds=31))
        rows = db.session.execute(db.select(Notification)).scalars().all()
        assert {r.attempts for r in rows} == {2}
        assert all(r.next_attempt_at == t0 + timedelta(seconds=31 + 60) for r in rows)

        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=ports["smtp"])
        smtp.start()
        try:
            up = dispatch(config, now=t0 + timedelta(seconds=95))
            again = dispatch(config, now=t0 + timedelta(seconds=400))
        finally:
            smtp.stop()
        assert sorted(up.sent) == [("boss.mail", "email", 3), ("cw.mail", "email", 2)]
        assert again.sent == [] and {f[1] for f in again.failed} == {"webhook"}  # only the webhook still down
        assert sorted(to for to, _ in inbox.messages) == [["boss.mail@example.org"], ["cw.mail@example.org"]]
        for _, raw in inbox.messages:
            text = raw.decode()
            for word in PERSONAL:
                assert word not in text
            message = message_from_bytes(raw)
            body = message.get_payload()
            assert "http://homecoming.test/children/" in body and "case " in body
        boss_mail = next(message_from_bytes(raw) for to, raw in inbox.messages if to == ["boss.mail@example.org"])
        assert boss_mail["Subject"] == "Homecoming: 3 alerts" and "visit escalated" in boss_mail.get_payload()
        assert all(code in boss_mail.get_payload() for code in facts["codes"])
        sent = db.session.execute(db.select(Notification).where(Notification.channel == "email")).scalars().all()
        assert {(r.status, r.attempts) for r in sent} == {("sent", 3)} and len({r.digest_id for r in sent}) == 2


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that checks the signature the way a gateway would."""

    calls: list = []
    fail_next = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, self.headers.get("X-Homecoming-Signature", ""))
        if Receiver.fail_next:
            Receiver.fail_next -= 1
            self.send_response(503)
        else:
            Receiver.calls.append((valid, self.headers.get("X-Homecoming-Delivery"), body))
            self.send_response(204 if valid else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(ports):
    Receiver.calls, Receiver.fail_next = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", ports["hook"]), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_retried_and_sent_once_per_recipient(notify_app, receiver):
    config = {**notify_app.config, "SMTP_HOST": None}  # webhook only
    with notify_app.app_context():
        facts = seed(date(2025, 3, 10))
        assert enqueue(config) == 6
        db.session.commit()
        t0 = utcnow()
        first = dispatch(config, now=t0)
        # The receiver answered 503 once: that digest waits; the other two went out.
        assert len(first.failed) == 1 and first.failed[0][2] == "HTTP 503" and len(first.sent) == 2
        later = dispatch(config, now=t0 + timedelta(minutes=5))
        assert len(later.sent) == 1
        assert dispatch(config, now=t0 + timedelta(minutes=30)).sent == []
    assert len(receiver.calls) == 3 and all(valid for valid, _, _ in receiver.calls)
    payloads = [json.loads(body) for _, _, body in receiver.calls]
    assert sorted(p["recipient"] for p in payloads) == ["boss.mail", "cw.mail", "cw.nomail"]
    assert [delivery for _, delivery, _ in receiver.calls] == [p["digest_id"] for p in payloads]
    boss = next(p for p in payloads if p["recipient"] == "boss.mail")
    assert sorted(a["case_code"] for a in boss["alerts"]) == sorted(facts["codes"])
    assert {(a["rule"], a["severity"], a["due_on"]) for a in boss["alerts"]} == {
        ("visit_escalated", "warning", "2025-02-23")}
    assert all(a["link"].startswith("http://homecoming.test/children/") for a in boss["alerts"])
    for _, _, body in receiver.calls:
        for word in PERSONAL:
            assert word.encode() not in body


def test_tampered_body_fails_the_signature_check():
    from server.notify.channels import signature

    body = b'{"alerts":[]}'
    assert signature(SECRET, body) == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature(SECRET, body + b" ") != signature(SECRET, body)
    assert signature("another-secret", body) != signature(SECRET, body)


def test_resolved_before_sending_is_not_sent_and_old_rows_expire(notify_app, receiver):
    config = {**notify_app.config, "SMTP_HOST": None}
    receiver.fail_next = 0
    with notify_app.app_context():
        facts = seed(date(2025, 3, 10))
        enqueue(config)
        db.session.commit()
        # The first caseworker's children get visited: their alerts resolve before anything is sent.
        from models.followups import Followup
        from models.records import update_record

        for visit in db.session.execute(db.select(Followup).where(
                Followup.kind == "visit", Followup.status == "scheduled")).scalars():
            update_record(visit, {"status": "done", "completed_on": date(2025, 3, 10), "seen": True},
                          Actor(user=None, source="system"))
        db.session.commit()
        alerting.resolve_stale(date(2025, 3, 10))
        db.session.commit()
        result = dispatch(config)
        assert result.sent == []
        statuses = {r.status for r in db.session.execute(db.select(Notification)).scalars()}
        assert statuses == {"cancelled"}
        # A later alert whose rows are never deliverable expires after NOTIFY_EXPIRE_HOURS.
        db.session.execute(db.update(Notification).values(status="pending"))
        db.session.commit()
        late = dispatch(config, now=utcnow() + timedelta(hours=config["NOTIFY_EXPIRE_HOURS"], minutes=1))
        assert late.expired == 6 and late.sent == []
    assert receiver.calls == []
    assert facts["codes"]


class SlowInbox(Inbox):
    """Takes its time over each message, so two dispatchers overlap while one is sending."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.postgres
def test_two_dispatchers_at_once_send_one_message_per_recipient(notify_app, ports):
    config = {**notify_app.config, "WEBHOOK_URL": None}
    with notify_app.app_context():
        seed(date(2025, 3, 10))
        enqueue(config)
        db.session.commit()
    inbox = SlowInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=ports["smtp"])
    smtp.start()
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            with notify_app.app_context():
                barrier.wait()
                results.append(dispatch(config))
                db.session.remove()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        smtp.stop()
    assert errors == []
    assert sorted(to for to, _ in inbox.messages) == [["boss.mail@example.org"], ["cw.mail@example.org"]]
    assert sorted(s for r in results for s in r.sent) == [("boss.mail", "email", 3), ("cw.mail", "email", 2)]
