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
