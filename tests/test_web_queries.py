"""No N+1: the number of SQL statements a page runs does not grow with the rows it shows."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from models import Actor, Device, User, db, utcnow
from models.records import create_record
from models.syncstate import Conflict
from tests.factories import make_child, make_user, walk
from tests.web_client import sign_in


@contextmanager
def counted(app):
    statements = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def users_named(*names):
    return [db.session.execute(db.select(User).where(User.username == n)).scalar_one() for n in names]


def add_children(app, n):
    with app.app_context():
        manager, *caseworkers = users_named("q.manager", "q.cw0", "q.cw1", "q.cw2")
        boss = Actor(user=manager, source="api")
        for i in range(n):
            child = make_child(caseworkers[i % len(caseworkers)], sex=("female", "male")[i % 2],
                               birth_year=utcnow().year - 10 - i % 9)
            walk(child, ["registered", "assessed", "reunified", "follow_up", "closure_pending"][: i % 6], boss)
            for k in range(3):
                create_record("followup", {"child_id": child.id, "kind": "visit", "status": "scheduled",
                                           "due_on": utcnow().date() + timedelta(days=k * 3 - 4)}, boss)
            create_record("alert", {"key": f"{child.id}:q", "rule": "visit_overdue", "severity": "urgent",
                                    "child_id": child.id, "recipient_id": manager.id, "due_on": utcnow().date()},
                          boss)
            db.session.add(Conflict(child_id=child.id, entity="child", record_id=child.id, base_version=1,
                                    server_version=child.version, fields=["risk_level"], base_values={},
                                    server_values={"risk_level": "high"}, device_values={"risk_level": "low"}))
            db.session.add(Device(user_id=caseworkers[0].id, label=f"Device {i}", token_hash="0" * 64))
        db.session.commit()


@pytest.fixture
def staff(app):
    with app.app_context():
        make_user("manager", username="q.manager")
        for i in range(3):
            make_user("caseworker", username=f"q.cw{i}")
        db.session.commit()


PAGES = ("/", "/children", "/children?sex=female&sort=-stage_since", "/followups", "/alerts", "/conflicts",
         "/approvals", "/devices", "/audit")


def statements_per_page(app, client, paths):
    counts = {}
    for path in paths:
        with counted(app) as statements:
            response = client.get(path)
        assert response.status_code == 200, path
        # A page's audit row is at most two statements (the event, one insert of its child ids) whatever
        # the page holds, and only the event when it shows no child: counted apart so sizes compare.
        audit_writes = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT")]
        assert len(audit_writes) <= 2, path
        counts[path] = len(statements) - len(audit_writes)
    return counts


def test_page_queries_do_not_grow_with_rows(app, client, staff):
    admin_client = app.test_client()
    with app.app_context():
        make_user("admin", username="q.admin")
        db.session.commit()
    sign_in(client, "q.manager")
    sign_in(admin_client, "q.admin")
    manager_pages = [p for p in PAGES if p not in ("/audit",)]

    add_children(app, 4)
    small = statements_per_page(app, client, manager_pages)
    small_audit = statements_per_page(app, admin_client, ["/audit", "/users"])
    add_children(app, 16)
    large = statements_per_page(app, client, manager_pages)
    large_audit = statements_per_page(app, admin_client, ["/audit", "/users"])

    assert large == small
    assert large_audit == small_audit
    assert small["/"] <= 12  # a handful of GROUP BY counts, not a query per child


def test_child_page_queries_do_not_grow_with_its_records(app, client, staff):
    with app.app_context():
        manager, caseworker = users_named("q.manager", "q.cw0")
        boss = Actor(user=manager, source="api")
        child = make_child(caseworker)
        walk(child, ["registered", "assessed"], boss)
        child_id = child.id
        db.session.commit()
    sign_in(client, "q.manager")

    def add_records(n):
        with app.app_context():
            manager, caseworker = users_named("q.manager", "q.cw0")
            boss = Actor(user=manager, source="api")
            for i in range(n):
                create_record("assessment", {"child_id": child_id, "kind": "health", "assessed_on": utcnow().date(),
                                             "risk_level": "low"}, boss)
                create_record("service", {"child_id": child_id, "type": "education", "status": "active"}, boss)
                create_record("followup", {"child_id": child_id, "kind": "visit", "status": "done",
                                           "due_on": utcnow().date(), "completed_on": utcnow().date(),
                                           "seen": True}, boss)
                create_record("followup", {"child_id": child_id, "kind": "visit", "status": "scheduled",
                                           "due_on": utcnow().date() + timedelta(days=i)}, boss)
                create_record("alert", {"key": f"{child_id}:{n}:{i}", "rule": "visit_overdue", "severity": "warning",
                                        "child_id": child_id, "recipient_id": caseworker.id}, boss)
            db.session.commit()

    add_records(2)
    small = statements_per_page(app, client, [f"/children/{child_id}"])
    add_records(10)
    large = statements_per_page(app, client, [f"/children/{child_id}"])
    assert large == small
