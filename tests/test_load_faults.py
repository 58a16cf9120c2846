"""The short version of bench/load_faults.py (issue 15): two "hosts" of gunicorn workers on a
PostgreSQL cluster of the test's own, a few devices syncing for ~20 s while a worker is killed -9,
PostgreSQL restarts and the scheduler leader is killed -9 with a second scheduler waiting. Nothing
may be lost or duplicated, and the only HTTP errors are 503 + Retry-After while PostgreSQL restarts."""

import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need

# It brings its own PostgreSQL cluster, whatever TEST_DATABASE_URL says; marked postgres so that
# `make test` runs it once, in its PostgreSQL pass, not in both.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BENCH = Path(__file__).resolve().parent.parent / "bench" / "load_faults.py"
spec = importlib.util.spec_from_file_location("load_faults", BENCH)
load_faults = importlib.util.module_from_spec(spec)
spec.loader.exec_module(load_faults)


@pytest.fixture(scope="module")
def cluster():
    need(load_faults.postgres_bin() is not None, "needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)")
    work = Path(tempfile.mkdtemp(prefix="homecoming-load-test-"))
    work.chmod(0o755)  # the postgres user must reach its folder inside
    cluster = load_faults.Cluster(work / "pg").init()
    yield cluster, work
    cluster.stop()
    shutil.rmtree(work, ignore_errors=True)


def test_two_hosts_survive_a_killed_worker_a_postgres_restart_and_a_killed_scheduler_leader(cluster):
    cluster, work = cluster
    report = load_faults.run_once(cluster, work, workers=1, hosts=2, devices=4, seconds=20, batch=40, think=0.5)
    load_faults.print_reports([report])

    assert report.pushes > 10 and report.pages > 10
    assert report.outcomes.get("applied", 0) > 0
    assert report.sent == sum(report.outcomes.values())  # every batch got its answer in the end
    assert report.lost == 0 and report.duplicated == 0
    assert report.mismatched == 0  # the log's outcome is the one the device was told
    assert report.missing_records == 0 and report.missing_conflicts == 0
    assert report.unexpected == []  # no 500, no 503 without Retry-After, nothing else
    assert report.late_503s == 0  # 503 + Retry-After only while PostgreSQL restarted
    assert all(seconds is not None for seconds in report.faults.values()), report.faults
    assert set(report.faults) == {"worker killed, replaced after s", "postgres down s",
                                  "scheduler leader killed, taken over after s"}
