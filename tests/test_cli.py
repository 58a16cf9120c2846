"""The command-line tools."""

import pytest

from models import Child, StageTransition, User, db
from models.lifecycle import STAGES


def test_users_create_and_list(runner, app):
    result = runner.invoke(args=["users", "create", "fictional.mgr", "--role", "manager", "--password-stdin"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    listed = runner.invoke(args=["users", "list"])
    assert "fictional.mgr" in listed.output and "manager" in listed.output
    again = runner.invoke(args=["users", "create", "fictional.mgr", "--role", "manager", "--password-stdin"],
                          input="a long enough password\n")
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["users", "create", "x", "--role", "analyst", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    bad_role = runner.invoke(args=["users", "create", "y", "--role", "king", "--password-stdin"], input="x" * 12)
    assert bad_role.exit_code == 2
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "fictional.mgr")).scalar_one()
        assert user.check_password("a long enough password") and user.password_hash.startswith("scrypt")


@pytest.mark.parametrize("username, option, value, message", [
    # SQLite stored the long ones; PostgreSQL refused them with a traceback.
    ("fictional.long", "--display-name", "x" * 121, "At most 120 characters"),
    ("fictional.long", "--email", "x" * 255, "At most 254 characters"),
    # The web refused a username the command line took.
    ("fictional.ōkello", "--email", "x@example.org", "letters, digits"),
])
def test_users_create_refuses_what_the_web_refuses(runner, app, username, option, value, message):
    result = runner.invoke(args=["users", "create", username, "--role", "manager", "--password-stdin",
                                 option, value], input="a long enough password\n")
    assert result.exit_code == 1 and message in result.output, result.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(User)).scalar_one() == 0


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_alert_scan_as_of_a_day_the_rules_cannot_reach(runner, day):
    result = runner.invoke(args=["alerts", "scan", "--as-of", day])
    assert result.exit_code == 2 and "within 100 years of today" in result.output, result.output


def test_demo_seed_covers_every_district_and_many_stages(runner, app):
    result = runner.invoke(args=["demo", "seed", "--children", "80"])
    assert result.exit_code == 0, result.output
    assert "demo login: demo.manager" in result.output
    with app.app_context():
        children = db.session.execute(db.select(Child)).scalars().all()
        assert len(children) == 80
        assert {c.district for c in children} == {"Kitgum", "Lamwo", "Pader", "Agago", "Gulu"}
        assert {c.stage for c in children} == set(STAGES)
        # Every child's stage is the last of its transitions.
        for child in children:
            last = db.session.execute(
                db.select(StageTransition.to_stage).where(StageTransition.child_id == child.id)
                .order_by(StageTransition.seq.desc()).limit(1)).scalar_one()
            assert last == child.stage


def test_reset_password_gives_a_one_time_password_and_ends_sessions(runner, app):
    from models import AuditEvent

    with app.app_context():
        from tests.factories import make_user

        user = make_user("admin", username="lost.admin")
        nonce = user.token_nonce
        db.session.commit()
    result = runner.invoke(args=["users", "reset-password", "lost.admin"])
    assert result.exit_code == 0, result.output
    password = result.output.split("New one-time password for 'lost.admin': ", 1)[1].split()[0]
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "lost.admin")).scalar_one()
        assert user.check_password(password) and user.password_temporary and user.token_nonce != nonce
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.password_reset")).scalar_one()
        assert event.target == "lost.admin" and event.details == {"via": "cli"}
    missing = runner.invoke(args=["users", "reset-password", "nobody"])
    assert missing.exit_code == 1 and "No user 'nobody'" in missing.output


def test_serve_says_in_one_line_that_the_port_is_taken(runner):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(args=["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: Port {port} on 127.0.0.1 is already in use (another Homecoming, or "
                                     f"another program): stop it, or choose another port, e.g. make run "
                                     f"PORT={port + 1}.")


def test_serve_says_the_scheduler_is_running(runner, monkeypatch):
    import threading

    import waitress

    import server.scheduler

    served = []
    monkeypatch.setattr(server.scheduler, "start_in_process", lambda app: threading.current_thread())
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: served.append(kw["port"]))
    result = runner.invoke(args=["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "Scheduler running in this process: alert scan every 60 min" in result.output and served == [0]


def test_demo_data_has_devices_conflicts_and_urgent_alerts(runner, app):
    from models import Alert, Device
    from models.syncstate import Conflict

    assert runner.invoke(args=["demo", "seed", "--children", "30"]).exit_code == 0
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Device)).scalar_one() == 3
        assert db.session.execute(db.select(db.func.count()).select_from(Conflict)
                                  .where(Conflict.status == "open")).scalar_one() == 3
        urgent = db.session.execute(db.select(Alert.status).where(Alert.severity == "urgent")).scalars().all()
        assert len(urgent) >= 2 and "acknowledged" in urgent and "open" in urgent
