"""E-mail over TLS (issue 8, finding 11): STARTTLS when the server offers it, implicit TLS by setting,
certificates checked (a private CA by HOMECOMING_SMTP_CA_FILE), a password only over TLS, and with
HOMECOMING_SMTP_REQUIRE_TLS nothing sent in clear: the notification waits for a retry or its expiry.
A real aiosmtpd server with a certificate made here. Every name here is fictional."""

import datetime as dt
import ipaddress
import socket
import ssl
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import config as configuration
from config import RULE_DEFAULTS
from models import Actor, alerting, db, utcnow
from models.notifications import Notification
from models.planning import after_changes
from server import create_app
from server.notify.dispatch import dispatch
from server.notify.outbox import enqueue
from tests.conftest import empty_tables, make_config
from tests.factories import make_child, make_user, walk

LOGIN, PASSWORD = "homecoming-mailer", "fictional-smtp-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A private CA and a certificate it signed for 127.0.0.1; returns (ca file, cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Fictional test CA")).issuer_name(_name("Fictional test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


def server_context(certificates) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates[1], certificates[2])
    return context


class Inbox:
    """Keeps every message with whether it came over TLS and who logged in."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.messages.append({"to": envelope.rcpt_tos, "tls": encrypted, "login": session.auth_data})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == LOGIN.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)


@pytest.fixture
def smtp_server():
    """Start an aiosmtpd server on a free port; yields a function taking Controller's arguments."""
    started = []

    def start(**kw):
        controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port(), **kw)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def mail_app(migrated):
    """Builds an app whose e-mail goes to ``port`` with the given settings, and one queued e-mail."""
    apps = []

    def build(port, **settings):
        app = create_app(make_config(migrated, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT_SECONDS=5,
                                     NOTIFY_RETRY_SECONDS=30, **settings))
        apps.append(app)
        with app.app_context():
            cw = make_user("caseworker", username="cw.tls", email="cw.tls@example.org")
            child = make_child(cw)
            walk(child, ["registered", "assessed", "reunified", "follow_up"], Actor(user=cw, source="api"))
            db.session.commit()
            today = date(2025, 3, 10)
            after_changes({child.id}, today=today, rules=RULE_DEFAULTS)
            db.session.commit()
            assert alerting.scan(today, RULE_DEFAULTS).created
            db.session.commit()
            assert enqueue(app.config) == 1
            db.session.commit()
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            empty_tables()
            db.engine.dispose()


def send(app, now=None):
    with app.app_context():
        result = dispatch(app.config, now=now or utcnow())
        rows = db.session.execute(db.select(Notification.status, Notification.attempts,
                                            Notification.last_error)).all()
        return result, rows


def test_starttls_offered_is_used_with_a_checked_certificate_and_the_login_goes_over_it(
        mail_app, smtp_server, certificates):
    server = smtp_server(tls_context=server_context(certificates), require_starttls=True,
                         authenticator=authenticator, auth_require_tls=True)
    app = mail_app(server.port, SMTP_CA_FILE=certificates[0], SMTP_USERNAME=LOGIN, SMTP_PASSWORD=PASSWORD)
    result, rows = send(app)
    assert result.sent == [("cw.tls", "email", 1)], result
    assert server.handler.messages == [{"to": ["cw.tls@example.org"], "tls": True, "login": LOGIN}]
    assert [row.status for row in rows] == ["sent"]


def test_a_certificate_the_client_cannot_check_gets_nothing(mail_app, smtp_server, certificates):
    server = smtp_server(tls_context=server_context(certificates))
    app = mail_app(server.port)  # no HOMECOMING_SMTP_CA_FILE: the private CA is not trusted
    result, rows = send(app)
    assert result.sent == [] and result.failed == [("cw.tls", "email", "SSLCertVerificationError")]
    assert server.handler.messages == []  # no fallback to plain text
    assert [(row.status, row.attempts) for row in rows] == [("pending", 1)]


def test_implicit_tls_by_setting(mail_app, smtp_server, certificates):
    server = smtp_server(ssl_context=server_context(certificates))
    app = mail_app(server.port, SMTP_SECURITY="ssl", SMTP_CA_FILE=certificates[0], SMTP_REQUIRE_TLS=True)
    result, _rows = send(app)
    assert result.sent == [("cw.tls", "email", 1)], result
    assert [m["tls"] for m in server.handler.messages] == [True]


def test_require_tls_refuses_a_server_without_it_and_keeps_the_notification_until_it_expires(mail_app, smtp_server):
    server = smtp_server()  # offers no STARTTLS
    app = mail_app(server.port, SMTP_REQUIRE_TLS=True)
    t0 = utcnow()
    result, rows = send(app, t0)
    assert result.sent == [] and result.failed[0][2].startswith("tls_unavailable")
    assert server.handler.messages == []
    assert [(row.status, row.attempts) for row in rows] == [("pending", 1)]
    result, rows = send(app, t0 + timedelta(seconds=31))  # retried, still refused
    assert result.failed and [(row.status, row.attempts) for row in rows] == [("pending", 2)]
    result, rows = send(app, t0 + timedelta(hours=app.config["NOTIFY_EXPIRE_HOURS"], seconds=1))
    assert result.expired == 1 and [row.status for row in rows] == ["expired"]
    assert server.handler.messages == []


def test_without_require_tls_a_plain_server_still_gets_mail_but_never_the_password(mail_app, smtp_server):
    plain = smtp_server()
    assert send(mail_app(plain.port))[0].sent == [("cw.tls", "email", 1)]
    assert [m["tls"] for m in plain.handler.messages] == [False]


def test_the_password_is_not_sent_in_clear(mail_app, smtp_server):
    plain = smtp_server(authenticator=authenticator, auth_require_tls=False)
    result, rows = send(mail_app(plain.port, SMTP_USERNAME=LOGIN, SMTP_PASSWORD=PASSWORD))
    assert result.failed and "password" in result.failed[0][2]
    assert plain.handler.messages == [] and [row.status for row in rows] == ["pending"]


@pytest.mark.parametrize("settings, problem", [
    ({"SMTP_SECURITY": "tls"}, "starttls, ssl or none"),
    ({"SMTP_SECURITY": "none", "SMTP_REQUIRE_TLS": True}, "cannot go with"),
    ({"SMTP_USERNAME": LOGIN}, "go together"),
    ({"SMTP_CA_FILE": "/nonexistent/ca.pem"}, "not a file"),
])
def test_smtp_settings_that_cannot_work_stop_the_app(settings, problem):
    config = configuration.TestingConfig()
    for key, value in settings.items():
        setattr(config, key, value)
    with pytest.raises(ValueError, match=problem):
        config.validate()


def test_implicit_tls_defaults_to_port_465(monkeypatch):
    monkeypatch.setenv("HOMECOMING_SMTP_SECURITY", "ssl")
    assert configuration.TestingConfig().SMTP_PORT == 465
