"""The ``db`` object, the declarative base and the columns every synced record shares."""

import uuid
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.sensitivity import aggregate

# Stable constraint names, so Alembic migrations can name what they alter.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class SyncedRecord:
    """Columns of every record a device may create: DESIGN §3.

    ``version`` goes 1, 2, 3 with each applied change; ``seq`` is the server-wide change sequence the
    pull cursor follows (allocated in commit order, see ``models.changes``). ``deleted_at`` marks a
    soft-deleted record, which devices receive as ``remove``.
    """

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    version: Mapped[int] = mapped_column(default=1, info=aggregate())
    seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True, info=aggregate())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, info=aggregate()
    )
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=aggregate())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=aggregate())

    # Names of the columns that are bookkeeping rather than fields a client edits.
    BOOKKEEPING = ("id", "version", "seq", "created_at", "updated_at", "recorded_at", "deleted_at")


def upsert_insert(table):
    """An INSERT that can take ON CONFLICT, in the current session's dialect (both SQLite and
    PostgreSQL have it, under their own constructs)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
