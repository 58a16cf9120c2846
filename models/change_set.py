"""The one write step of every writer: the rows a unit of work decided, written at once.

The operations of ``models.records`` decide changes in memory and hand them to a ``ChangeSet``;
``write`` stamps the change sequence (``models.changes.stamp``) and writes with one statement per
table (per table and set of changed columns for updates), then history, conflicts, scope changes and
search tokens. A sync batch writes hundreds of changes through one; a one-change operation one
(``written``), attaching its new record so its caller goes on using it. Records the session holds are
changed with ``set_committed_value``: the ORM never sees them dirty, so never writes them again.
"""

import functools
import os
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import bindparam, insert, inspect, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from models.base import db, utcnow
from models.changes import ScopeChange, stamp
from models.children import Child
from models.history import RecordHistory
from models.search import SEARCHED_FIELDS, delete_tokens, insert_tokens


@functools.cache
def _columns(model) -> tuple:
    return tuple((attr.key, attr.columns[0]) for attr in inspect(model).column_attrs)


@functools.cache
def _template(model) -> tuple[dict, tuple]:
    """Every column's value before anything is set: its scalar default or None; and the callable defaults."""
    values, made = {}, []
    for key, column in _columns(model):
        default = column.default
        if default is not None and default.is_callable:
            made.append((key, default.arg))
        values[key] = None if default is None or default.is_callable else default.arg
    return values, tuple(made)


def new(model, **values):
    """A new record with every column set (a Python default where nothing was given), straight into the
    instance: what later decisions read is what is written, and an attached record has nothing to load."""
    record = inspect(model).class_manager.new_instance()
    template, made = _template(model)
    record.__dict__.update(template)
    for key, make in made:
        if key not in values:
            record.__dict__[key] = make(None)
    record.__dict__.update(values)
    return record


def time_ordered_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): Unix milliseconds in the top 48 bits, then random bits. Ids the server
    makes for appended rows (transitions, conflicts) take these, so a new row lands at the end of its
    key's index instead of on a random page of it. Never a child's id: its case code is the id's top
    40 bits (models.children), which would then be the clock's."""
    rand = int.from_bytes(os.urandom(10), "big")
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (rand >> 68) << 64
                     | 0b10 << 62 | rand & ((1 << 62) - 1))


def assign(record, key: str, value) -> None:
    """Set a value the write step writes: a record the session holds must not look dirty to the ORM.

    Straight into the instance's dict, which the ORM does not watch, unless the session has something
    pending on that attribute (expired, so a refresh would load it over this value; or changed through
    the ORM): then through ``set_committed_value``, which settles it. Checking is a tenth of the cost."""
    state = record._sa_instance_state
    if key in state.expired_attributes or key in state.committed_state:
        set_committed_value(record, key, value)
    else:
        record.__dict__[key] = value


def _row(record) -> dict:
    values = record.__dict__  # a primary key left None is numbered by the database
    return {c.name: values[key] for key, c in _columns(type(record)) if not (c.primary_key and values[key] is None)}


class ChangeSet:
    """What one unit of work changes, in the order it was decided."""

    def __init__(self):
        self.now = utcnow()  # the time of every history row and update it writes
        self.new: dict[int, object] = {}  # id(record) -> record, inserted
        self.changed: dict[int, tuple] = {}  # id(record) -> (record, changed keys), updated
        self.synced: dict[int, object] = {}  # every record that takes a seq, in decision order
        self.history: list[dict] = []
        self.history_of: dict = {}  # record id -> its history rows decided here, in version order
        self.rows: list = []  # conflicts and scope changes
        self.reindex: dict = {}  # child id -> child whose searched fields are new or changed

    def add(self, record) -> None:
        self.new[id(record)] = record
        self.synced[id(record)] = record

    def change(self, record, values: dict) -> None:
        for key, value in values.items():
            assign(record, key, value)
        self.synced.pop(id(record), None)
        self.synced[id(record)] = record  # its seq follows its last change
        if id(record) not in self.new:
            keys = self.changed.get(id(record), (record, set()))[1]
            self.changed[id(record)] = (record, keys | values.keys())

    def add_history(self, row: dict) -> None:
        self.history.append(row)
        self.history_of.setdefault(row["record_id"], []).append(row)

    def moved(self, child: Child, old_caseworker, new_caseworker) -> None:
        """A reassignment: the old caseworker's devices drop the child, the new one's receive it."""
        if old_caseworker is not None:
            self.rows.append(new(ScopeChange, user_id=old_caseworker, child_id=child.id, kind="remove"))
        if new_caseworker is not None:
            self.rows.append(new(ScopeChange, user_id=new_caseworker, child_id=child.id, kind="add"))

    def write(self) -> None:
        """Write everything decided; flushes nothing of the ORM's, never commits."""
        if not (self.synced or self.rows):
            return
        session = db.session
        for record, _ in self.changed.values():
            assign(record, "updated_at", self.now)
        stamp(session, [*self.synced.values(), *(r for r in self.rows if isinstance(r, ScopeChange))], assign)
        connection = session.connection()
        inserts: dict = {}
        for record in [*self.new.values(), *self.rows]:
            inserts.setdefault(type(record), []).append(_row(record))
        with _prepared(connection):
            for model in sorted(inserts, key=lambda m: m is not Child):  # children first: the rest reference one
                connection.execute(insert(model.__table__), inserts[model])
            if self.history:
                connection.execute(insert(RecordHistory.__table__), self.history)
        updates: dict = {}
        for record, keys in self.changed.values():
            names = frozenset(keys | {"version", "seq", "updated_at"})
            updates.setdefault((type(record), names), []).append(record)
        for (model, names), records in updates.items():
            connection.execute(*_update(model, names, records))
        if self.reindex:
            delete_tokens([cid for cid, child in self.reindex.items() if id(child) not in self.new])
            insert_tokens({cid: {name: getattr(c, name) for name in SEARCHED_FIELDS} for cid, c in self.reindex.items()})

    def attach(self) -> None:
        """Put the new records into the session as if loaded."""
        for record in self.new.values():
            make_transient_to_detached(record)
            db.session.add(record)


@contextmanager
def _prepared(connection):
    """On PostgreSQL, the write step's INSERTs as prepared statements: psycopg sends an executemany as
    one INSERT a row, and PostgreSQL parsed and planned each of them anew (the engine prepares nothing:
    server/__init__.py): 15-35 % of a registration batch's wall time. An INSERT's plan is the same whatever
    the tables hold, so a prepared one cannot go stale as they grow, which a lookup's could."""
    driver = connection.connection.driver_connection
    if not hasattr(driver, "prepare_threshold"):  # sqlite3: nothing to prepare
        yield
        return
    before, driver.prepare_threshold = driver.prepare_threshold, 0
    try:
        yield
    finally:
        driver.prepare_threshold = before


def _update(model, names: frozenset, records: list) -> tuple:
    table = model.__table__
    columns = {key: column for key, column in _columns(model) if key in names}
    stmt = (update(table).where(table.c.id == bindparam("b_id"))
            .values({column.name: bindparam("b_" + key, type_=column.type) for key, column in columns.items()}))
    return stmt, [{"b_id": r.id, **{"b_" + key: getattr(r, key) for key in columns}} for r in records]


@contextmanager
def written():
    """A ``ChangeSet`` written when the block ends without an exception (nothing is written otherwise)."""
    changes = ChangeSet()
    yield changes
    changes.write()
    changes.attach()
