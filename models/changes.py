"""The server-wide change sequence that pull cursors follow (DESIGN §5).

Every insert or update of a synced record takes the next numbers from a one-row counter. The counter
row is updated inside the writing transaction, so it stays locked until that transaction commits: a
second writer waits, and numbers are handed out in commit order on PostgreSQL as on SQLite. A pull can
therefore never see seq N+1 committed while seq N is still invisible, and a cursor never skips a late
commit.

Reassigning a child writes ``ScopeChange`` rows so the old caseworker's devices remove the child and the
new caseworker's devices receive all its records, whose own seq did not move.
"""

import uuid

from sqlalchemy import BigInteger, ForeignKey, String, event, inspect, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import BigIntKey, SyncedRecord, db


class ChangeCounter(db.Model):
    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ScopeChange(db.Model):
    __tablename__ = "scope_change"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), index=True)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"))
    kind: Mapped[str] = mapped_column(String(8))  # "add" or "remove"


def allocate_seq(session: Session, count: int) -> int:
    """Reserve ``count`` sequence numbers; return the first. Locks the counter until commit."""
    if count <= 0:
        raise ValueError("count must be positive")
    counter = ChangeCounter.__table__
    # Core, not ORM: this runs inside before_flush, where an ORM bulk update must not autoflush.
    last = session.connection().execute(
        update(counter).where(counter.c.id == 1)
        .values(value=counter.c.value + count).returning(counter.c.value)
    ).scalar_one_or_none()
    if last is None:
        raise RuntimeError("change_counter has no row: run the migrations (flask db upgrade)")
    return last - count + 1


def stamp(session: Session, items: list, assign=setattr) -> None:
    """Give each item the next number, in list order: the one place a change sequence is stamped, for
    the ORM's flush (below) and the write step of ``models.change_set`` alike."""
    if items:
        first = allocate_seq(session, len(items))
        for offset, item in enumerate(items):
            assign(item, "seq", first + offset)


def current_seq(session: Session) -> int:
    return session.execute(db.select(ChangeCounter.value).where(ChangeCounter.id == 1)).scalar_one()


def _scope_changes(session: Session) -> list[ScopeChange]:
    from models.children import Child

    changes = []
    for obj in session.dirty:
        if isinstance(obj, Child):
            hist = inspect(obj).attrs.caseworker_id.history
            if hist.has_changes():
                old = hist.deleted[0] if hist.deleted else None
                new = obj.caseworker_id
                if old is not None and old != new:
                    changes.append(ScopeChange(user_id=old, child_id=obj.id, kind="remove"))
                if new is not None and old != new:
                    changes.append(ScopeChange(user_id=new, child_id=obj.id, kind="add"))
    return changes


@event.listens_for(Session, "before_flush")
def _stamp_sequence(session, flush_context, instances):
    changed = [
        obj for obj in session.new if isinstance(obj, SyncedRecord)
    ] + [
        obj for obj in session.dirty if isinstance(obj, SyncedRecord) and session.is_modified(obj)
    ]
    scope = _scope_changes(session)
    stamp(session, [*changed, *scope])
    session.add_all(scope)
