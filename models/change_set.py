"""The rows a unit of record changes decided, written at once: the one write step of every writer.

The operations of ``models.records`` decide a change in memory (checks first, then the new values on
the record object, a history row, a new child's first transition) and hand the result to a
``ChangeSet``. ``write`` then stamps the change sequence (``models.changes.stamp``) and writes the
decided rows with one statement per table: an INSERT executemany for the new rows of each table, an
UPDATE executemany for each table and set of changed columns, then history, conflicts, scope changes
and search tokens. A sync batch writes hundreds of changes through one ``ChangeSet``; the API, the web,
the CLI and the scheduler write one change through one (``written``).

Records the session already holds are changed with ``set_committed_value``, so the ORM never sees them
dirty and never writes them a second time. A one-change operation attaches its new record to the
session after the INSERT, so its caller goes on using it as a loaded record; a sync batch has no use
for its hundreds of new records once written and leaves them out of the session.
"""

import functools
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
    """(attribute key, column) of each column of ``model``."""
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
    """A new, unsaved record with every column set, a column's Python default where nothing was given:
    what later decisions read is what is written, and the attached record has nothing left to load.
    Values go straight into the instance: the ORM tracks nothing on it until ``write`` attaches it."""
    record = inspect(model).class_manager.new_instance()
    template, made = _template(model)
    record.__dict__.update(template)
    for key, make in made:
        if key not in values:
            record.__dict__[key] = make(None)
    record.__dict__.update(values)
    return record


def assign(record, key: str, value) -> None:
    """Set a value the write step writes: a record the session holds must not look dirty to the ORM."""
    if inspect(record).persistent:
        set_committed_value(record, key, value)
    else:
        record.__dict__[key] = value


@functools.cache
def _row_columns(model) -> tuple:
    return tuple((key, column.name, column.primary_key) for key, column in _columns(model))


def _row(record) -> dict:
    values = record.__dict__
    # A primary key left None is numbered by the database.
    return {name: values[key] for key, name, pk in _row_columns(type(record)) if not (pk and values[key] is None)}


class ChangeSet:
    """What one unit of work changes, in the order it was decided."""

    def __init__(self):
        self.new: dict[int, object] = {}  # id(record) -> record, inserted
        self.changed: dict[int, tuple] = {}  # id(record) -> (record, changed keys), updated
        self.synced: dict[int, object] = {}  # every record that takes a seq, in decision order
        self.history: list[dict] = []
        self.history_of: dict = {}  # record id -> its history rows decided here, in version order
        self.conflicts: list = []
        self.scope: list[ScopeChange] = []
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
            self.scope.append(new(ScopeChange, user_id=old_caseworker, child_id=child.id, kind="remove"))
        if new_caseworker is not None:
            self.scope.append(new(ScopeChange, user_id=new_caseworker, child_id=child.id, kind="add"))

    def add_conflict(self, conflict) -> None:
        self.conflicts.append(conflict)

    def write(self) -> None:
        """Write everything decided; flushes nothing of the ORM's, never commits."""
        if not (self.synced or self.history or self.conflicts):
            return
        session = db.session
        now = utcnow()
        for record, _ in self.changed.values():
            assign(record, "updated_at", now)
        stamp(session, [*self.synced.values(), *self.scope], assign)
        connection = session.connection()
        inserts: dict = {}
        for record in self.new.values():
            # Children first: every other record references one.
            inserts.setdefault((type(record) is not Child, type(record).__tablename__), []).append(record)
        for key in sorted(inserts):
            records = inserts[key]
            connection.execute(insert(type(records[0]).__table__), [_row(r) for r in records])
        updates: dict = {}
        for record, keys in self.changed.values():
            names = frozenset(keys | {"version", "seq", "updated_at"})
            updates.setdefault((type(record), names), []).append(record)
        for (model, names), records in updates.items():
            connection.execute(*_update(model, names, records))
        if self.history:
            connection.execute(insert(RecordHistory.__table__), self.history)
        for rows in (self.conflicts, self.scope):
            if rows:
                connection.execute(insert(type(rows[0]).__table__), [_row(r) for r in rows])
        self._write_tokens()

    def attach(self) -> None:
        """Put the new records into the session as if loaded, for a caller that goes on using them."""
        for record in self.new.values():
            make_transient_to_detached(record)
            db.session.add(record)

    def _write_tokens(self) -> None:
        if not self.reindex:
            return
        old = [cid for cid, child in self.reindex.items() if id(child) not in self.new]
        delete_tokens(old)
        insert_tokens({cid: {name: getattr(c, name) for name in SEARCHED_FIELDS} for cid, c in self.reindex.items()})


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
