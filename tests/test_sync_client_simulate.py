"""``flask sync simulate`` against a real server process: simulated phones register children, walk them
through the lifecycle with offline days, and end with every edit uploaded and nothing rejected."""

import re

import pytest
from sqlalchemy import func

from models import Child, StageTransition, User, db
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow


def test_simulate_drives_devices_against_a_running_server(app, runner, tmp_path):
    server = ServerProcess(app.config["SQLALCHEMY_DATABASE_URI"], log_path=tmp_path / "server.log").start()
    try:
        result = runner.invoke(args=["sync", "simulate", "--url", server.url, "--devices", "2", "--children", "6",
                                     "--days", "8", "--offline-rate", "0.4", "--store-dir", str(tmp_path / "phones")])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    total = re.search(r"total: (\d+) mutations pushed .*?, (\d+) applied, (\d+) duplicate, (\d+) conflict, "
                      r"(\d+) rejected", result.output)
    assert total, result.output
    pushed, applied, _duplicates, _conflicts, rejected = map(int, total.groups())
    assert pushed == applied > 12 and rejected == 0
    assert "sync stopped" not in result.output and "failed:" not in result.output
    with app.app_context():
        simulated = db.select(User.id).where(User.username.like("sim.cw%"))
        assert db.session.execute(
            db.select(func.count()).select_from(Child).where(Child.caseworker_id.in_(simulated))
        ).scalar_one() == 6
        moved = db.session.execute(
            db.select(func.count()).select_from(StageTransition).where(StageTransition.from_stage.is_not(None))
        ).scalar_one()
        assert moved > 0  # cases moved through the lifecycle, not just registered


def test_simulate_refuses_at_once_when_no_server_answers(runner):
    result = runner.invoke(args=["sync", "simulate", "--url", "http://127.0.0.1:9", "--devices", "1"])
    assert result.exit_code != 0 and "No Homecoming server answers at http://127.0.0.1:9" in result.output
