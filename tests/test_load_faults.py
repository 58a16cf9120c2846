"""The short version of bench/load_faults.py (issue 15): two "hosts" of gunicorn workers on a
PostgreSQL cluster of the test's own, a few devices syncing for ~20 s while a worker is killed -9,
PostgreSQL restarts and the scheduler leader is killed -9 with a second scheduler waiting. Nothing
may be lost or duplicated, and the only HTTP errors are 503 + Retry-After while PostgreSQL restarts."""

import http.client
import importlib.util
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need

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


# It brings its own PostgreSQL cluster, whatever TEST_DATABASE_URL says; marked postgres so that
# `make test` runs it once, in its PostgreSQL pass, not in both.
@pytest.mark.slow
@pytest.mark.postgres
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
    # Every failed attempt is explained by a fault and was retried to its 200: 503 + Retry-After while
    # PostgreSQL restarted, or a connection reset because its worker was killed -9; no 500, no 503
    # without Retry-After, no connection dropped for any other reason (a stale keep-alive, say).
    assert report.real == [], [vars(failure) for failure in report.real]
    assert set(report.errors) <= {load_faults.PG_503, load_faults.PG_CUT, load_faults.KILLED}, report.errors
    assert all(seconds is not None for seconds in report.faults.values()), report.faults
    assert set(report.faults) == {"worker killed, replaced after s", "postgres down s",
                                  "scheduler leader killed, taken over after s"}


# --- how the script tells a fault's failures from real errors (no server needed) ---------------------

KILL_AT, RESTART = 100.0, (200.0, 203.0)
TIMELINE = {"kill": (KILL_AT, "http://host-a"), "postgres": RESTART}


def failure(kind, *, at, started=None, opened=None, host="http://host-a", retried_ok=True, detail=""):
    started = at - 0.2 if started is None else started
    return load_faults.Failure(at=at, started=started, opened=started if opened is None else opened, idle=None,
                               host=host, what="POST /api/v1/sync/push", kind=kind, detail=detail,
                               retried_ok=retried_ok)


def test_a_request_in_flight_on_the_killed_worker_is_the_kills():
    assert load_faults.cause(failure("connection", at=KILL_AT + 0.01), TIMELINE) == load_faults.KILLED


def test_a_connection_dropped_away_from_any_fault_is_a_real_error():
    # The saturated runs' BrokenPipeErrors: a push on a kept-alive connection gunicorn had closed.
    stale = failure("connection", at=150.0, opened=120.0, detail="BrokenPipeError")
    assert load_faults.cause(stale, TIMELINE) == load_faults.REAL
    # ... on the other host than the one whose worker was killed, even at the kill
    assert load_faults.cause(failure("connection", at=KILL_AT + 0.01, host="http://host-b"), TIMELINE) == load_faults.REAL


def test_503s_count_as_the_restarts_only_inside_it_and_with_retry_after():
    assert load_faults.cause(failure("503 + Retry-After", at=201.0), TIMELINE) == load_faults.PG_503
    assert load_faults.cause(failure("503 + Retry-After", at=250.0), TIMELINE) == load_faults.REAL
    assert load_faults.cause(failure("503", at=201.0), TIMELINE) == load_faults.REAL
    assert load_faults.cause(failure("500", at=201.0), TIMELINE) == load_faults.REAL


def test_a_fault_s_failure_never_retried_to_its_200_is_a_real_error():
    assert load_faults.cause(failure("connection", at=KILL_AT + 0.01, retried_ok=False), TIMELINE) == load_faults.REAL


def test_an_idle_connection_closed_by_the_server_is_noticed_before_it_is_reused():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        conn = http.client.HTTPConnection(*listener.getsockname())
        conn.connect()
        server_side, _ = listener.accept()
        assert not load_faults.closed_by_server(conn)
        server_side.close()  # as gunicorn does when its keepalive runs out, or the kernel when a worker dies
        assert load_faults.closed_by_server(conn)
        conn.close()
