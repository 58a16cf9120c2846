"""What a PostgreSQL restart (issue 15's fault: pg_ctl restart -m fast) does to requests, on the real
driver: a connection cut mid-transaction is a 503 + Retry-After with nothing half-written, and the
device's retry of the same batch goes in; pooled connections cut while idle are replaced before use
(pool_pre_ping), so the next request does not fail at all."""

import pytest
from sqlalchemy import create_engine, func, text
from sqlalchemy.pool import NullPool

from models import Child, MutationLog, db
from tests.sync_server_helpers import child_fields, envelope, mutation, new_id, people_and_phones

pytestmark = pytest.mark.postgres


def terminate(pids):
    """As PostgreSQL's fast shutdown does: end these server processes (the clients see their connection
    cut: 'terminating connection due to administrator command')."""
    outside = create_engine(db.engine.url, poolclass=NullPool)  # not one of the app's pooled connections
    with outside.connect() as other:
        ended = other.execute(text("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                                   "FROM unnest(CAST(:pids AS int[])) AS pid"), {"pids": list(pids)}).scalar_one()
    outside.dispose()
    assert ended == len(pids)


def test_a_push_cut_mid_transaction_is_a_503_with_retry_after_and_its_retry_goes_in(app, client, monkeypatch):
    import server.sync_endpoint

    phone = people_and_phones(app, client, 1)["cw1"]
    real_ingest = server.sync_endpoint.ingest

    def cut_after_writing(*args, **kwargs):
        outcome = real_ingest(*args, **kwargs)  # the batch's rows are written, not yet committed
        terminate([db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()])
        return outcome

    monkeypatch.setattr(server.sync_endpoint, "ingest", cut_after_writing)
    batch = envelope(mutation("child", new_id(), fields=child_fields()))
    cut = phone.push(body=batch)
    assert cut.status_code == 503, cut.get_json()
    assert cut.headers["Retry-After"] == "5"
    assert cut.get_json()["error"]["code"] == "unavailable"
    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(Child)) == 0
        assert db.session.scalar(db.select(func.count()).select_from(MutationLog)) == 0

    monkeypatch.setattr(server.sync_endpoint, "ingest", real_ingest)
    again = phone.push(body=batch)  # the device's retry: the same batch
    assert again.status_code == 200, again.get_json()
    assert [r["status"] for r in again.get_json()["results"]] == ["applied"]


def test_pooled_connections_cut_while_idle_are_replaced_before_a_request_uses_them(app, client):
    phone = people_and_phones(app, client, 1)["cw1"]
    assert phone.pull().status_code == 200
    with app.app_context():
        pooled = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.rollback()  # back into the pool, idle
        terminate([pooled])
    assert phone.pull().status_code == 200
    assert phone.push(mutation("child", new_id(), fields=child_fields())).status_code == 200
    with app.app_context():
        assert db.session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pooled  # a new connection


def test_a_session_whose_rollback_fails_on_a_cut_connection_is_discarded_at_the_request_end(app):
    """Seen once in bench/load_faults.py: a pull answered during the PostgreSQL restart, then the end of the
    request closed its session, whose rollback failed on the connection the restart had cut (psycopg
    first deallocates evicted prepared statements: "consuming input failed: server closed the connection
    unexpectedly"); raised from Flask's teardown, that became gunicorn's bare HTML 500."""
    import psycopg

    with app.app_context():
        raw = db.session.connection().connection.dbapi_connection
        cut = raw.info.backend_pid
        terminate([cut])

        def rollback():
            raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

        raw.rollback = rollback
        app.do_teardown_appcontext()  # the end of a request: must not raise
        # Discarded, not back in the pool: the next request works, on another connection.
        assert db.session.execute(text("SELECT pg_backend_pid()")).scalar_one() != cut
