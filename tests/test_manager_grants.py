"""Finding 3: an admin cannot make a manager alone. A new manager, a promotion to manager and a
manager's password reset wait for another manager's confirmation on /grants; the admin never sees a
manager's password; the server's command line may still bootstrap the first manager."""

import socket

import pytest
from aiosmtpd.controller import Controller

from models import AuditEvent, User, db
from models.grants import ManagerGrant
from server import create_app
from tests.conftest import empty_tables, make_config
from tests.factories import make_user
from tests.web_client import post, sign_in, text

SHOWN = 'id="new-password"'


def _shown(response) -> str:
    return text(response).split(SHOWN, 1)[1].split('value="', 1)[1].split('"', 1)[0]


def _people():
    make_user("admin", username="g.admin")
    make_user("manager", username="g.boss")
    make_user("manager", username="g.other")
    make_user("caseworker", username="g.cw", email="g.cw@example.org")
    db.session.commit()


def _client(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def _user(username) -> User:
    return db.session.execute(db.select(User).where(User.username == username)).scalar_one()


def _grant_id(app, username):
    with app.app_context():
        return db.session.execute(db.select(ManagerGrant.id).join(User, User.id == ManagerGrant.user_id)
                                  .where(User.username == username, ManagerGrant.status == "pending")).scalar_one()


@pytest.fixture
def people(app):
    with app.app_context():
        _people()


def test_a_new_manager_waits_for_another_manager_and_the_admin_never_sees_the_password(app, people):
    admin = _client(app, "g.admin")
    created = post(admin, "/users", {"username": "g.new", "role": "manager"}, follow_redirects=True)
    assert created.status_code == 200 and SHOWN not in text(created) and "must confirm" in text(created)
    with app.app_context():
        assert _user("g.new").active is False
    assert post(admin, f"/users/{_id(app, 'g.new')}/enable").status_code == 302  # refused: still pending
    with app.app_context():
        assert _user("g.new").active is False
    assert admin.get("/grants").status_code == 403
    boss = _client(app, "g.boss")
    page = boss.get("/grants")
    assert page.status_code == 200 and "g.new" in text(page) and "new manager account" in text(page)
    confirmed = post(boss, f"/grants/{_grant_id(app, 'g.new')}/confirm")
    password = _shown(confirmed)
    assert sign_in(app.test_client(), "g.new", password).status_code == 302
    with app.app_context():
        new = _user("g.new")
        assert new.active and new.role == "manager" and new.password_temporary
        actions = [e.action for e in db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars()]
        assert "grant.request" in actions and "grant.confirm" in actions


def _id(app, username):
    with app.app_context():
        return _user(username).id


def test_a_promotion_waits_and_its_confirmation_replaces_the_password_the_admin_knew(app, people):
    admin = _client(app, "g.admin")
    created = post(admin, "/users", {"username": "g.puppet", "role": "caseworker"})
    known = _shown(created)  # the admin saw this one: it must not open a manager account
    assert post(admin, f"/users/{_id(app, 'g.puppet')}/role", {"role": "manager"}).status_code == 302
    with app.app_context():
        assert _user("g.puppet").role == "caseworker"
    boss = _client(app, "g.boss")
    post(boss, f"/grants/{_grant_id(app, 'g.puppet')}/confirm")
    with app.app_context():
        assert _user("g.puppet").role == "manager"
    assert sign_in(app.test_client(), "g.puppet", known).status_code == 401


def test_a_managers_password_reset_needs_confirmation_and_the_requester_cannot_confirm(app, people):
    admin = _client(app, "g.admin")
    reset = post(admin, f"/users/{_id(app, 'g.other')}/password", follow_redirects=True)
    assert SHOWN not in text(reset) and "must confirm" in text(reset)
    again = post(admin, f"/users/{_id(app, 'g.other')}/password", follow_redirects=True)
    assert "already waits" in text(again)
    grant_id = _grant_id(app, "g.other")
    # The manager concerned cannot confirm their own reset; another manager can, or refuse.
    other = _client(app, "g.other")
    refused = post(other, f"/grants/{grant_id}/confirm", follow_redirects=True)
    assert "Someone other than" in text(refused)
    with app.app_context():
        assert db.session.get(ManagerGrant, grant_id).status == "pending"
    boss = _client(app, "g.boss")
    post(boss, f"/grants/{grant_id}/refuse")
    with app.app_context():
        assert db.session.get(ManagerGrant, grant_id).status == "refused"
    assert sign_in(app.test_client(), "g.other").status_code == 302  # the password did not change


def test_a_confirmed_password_goes_by_e_mail_when_smtp_is_set_up(migrated):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            inbox.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    app = create_app(make_config(migrated, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT_SECONDS=5))
    try:
        with app.app_context():
            _people()
        admin = _client(app, "g.admin")
        post(admin, f"/users/{_id(app, 'g.cw')}/role", {"role": "manager"})
        boss = _client(app, "g.boss")
        done = post(boss, f"/grants/{_grant_id(app, 'g.cw')}/confirm", follow_redirects=True)
        assert SHOWN not in text(done) and "went to g.cw@example.org" in text(done)
        assert len(inbox) == 1 and inbox[0][0] == ["g.cw@example.org"]
        password = inbox[0][1].split("Your one-time password: ", 1)[1].split()[0]
        assert sign_in(app.test_client(), "g.cw", password).status_code == 302
    finally:
        controller.stop()
        with app.app_context():
            db.session.remove()
            empty_tables()
            db.engine.dispose()


def test_the_command_line_may_bootstrap_the_first_manager(runner, app):
    result = runner.invoke(args=["users", "create", "g.first", "--role", "manager", "--password-stdin"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _user("g.first").active and _user("g.first").role == "manager"
