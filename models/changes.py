"""The server-wide change sequence that pull cursors follow (DESIGN §5).

Every insert or update of a synced record takes the next numbers from a one-row counter. The counter
row is updated inside the writing transaction, so it stays locked until that transaction commits: a
second writer waits, and numbers are handed out in commit order on PostgreSQL as on SQLite. A pull can
therefore never see seq N+1 committed while seq N is still invisible, and a cursor never skips a late
commit.

Reassigning a child writes ``ScopeChange`` rows (models.change_set) so the old caseworker's devices
remove the child and the new caseworker's devices receive all its records, whose own seq did not move.
"""

import uuid

from sqlalchemy import BigInteger, ForeignKey, String, event, update
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
    # A child, or a tracing request (issue 14: handed to another caseworker); one of the two.
    child_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("child.id"))
    tracing_request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tracing_request.id", ondelete="CASCADE"))
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


def stamp(session: Session, items: list, assign) -> None:
    """Give each item the next number, in list order: the one place a change sequence is stamped (the
    write step of models.change_set, and the hook below; retention and the alert scan allocate their
    own ranges)."""
    if items:
        first = allocate_seq(session, len(items))
        for offset, item in enumerate(items):
            assign(item, "seq", first + offset)


def current_seq(session: Session) -> int:
    return session.execute(db.select(ChangeCounter.value).where(ChangeCounter.id == 1)).scalar_one()


@event.listens_for(Session, "before_flush")
def _stamp_orm_writes(session, flush_context, instances):
    """A synced record changed through the ORM instead of models.records (a test's fixture, a one-off
    fix) still takes its seq, so devices receive it. Reassignments go through models.records, which
    writes their scope changes."""
    stamp(session, [obj for obj in session.new if isinstance(obj, SyncedRecord)]
          + [obj for obj in session.dirty if isinstance(obj, SyncedRecord) and session.is_modified(obj)], setattr)
