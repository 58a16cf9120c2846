"""Re-encrypting stored values under the current data key (issue 8, finding 9; docs/operations.md).

Every value of an ``EncryptedText``-family column carries its key version in its prefix (``k1:``,
``k2:``). Rotation walks the metadata for such columns and rewrites, batch by batch, the values whose
prefix is not the current version. Because it only selects what is still under an older key, a run that
is killed simply continues where it stopped when started again.

It works on the stored text with plain SQL, never through ORM objects: a rewrite must not bump a
record's ``version``, take a change sequence number or touch ``updated_at`` (a device would otherwise
pull every record again, and the record would look edited). Each value is written back only if it is
still the value that was read, so a concurrent edit by the running app (which seals under the current
key anyway) wins.
"""

from dataclasses import dataclass

from sqlalchemy import Column, Table, Text, bindparam, func, not_, select, text, type_coerce

from models import crypto
from models.base import db


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    @property
    def stored(self):
        """The column as stored: the sealed text, not decrypted on the way out."""
        return type_coerce(self.column, Text())


def encrypted_columns() -> list[EncryptedColumn]:
    return [EncryptedColumn(table, column) for table in db.metadata.sorted_tables for column in table.columns
            if isinstance(column.type, crypto.EncryptedText)]


def _stale(target: EncryptedColumn):
    return target.column.is_not(None), not_(target.stored.like(crypto.prefix(crypto.current_version()) + "%"))


def pending(session, target: EncryptedColumn) -> int:
    """How many values of this column are still sealed under an older key."""
    return session.execute(select(func.count()).select_from(target.table).where(*_stale(target))).scalar_one()


def rotate_batch(session, target: EncryptedColumn, size: int) -> int:
    """Reseal up to ``size`` values of this column under the current key; return how many were read.
    Flushes nothing through the ORM and never commits: the caller commits each batch."""
    keys = list(target.table.primary_key.columns)
    rows = session.execute(
        select(*keys, target.stored.label("sealed")).where(*_stale(target)).order_by(*keys).limit(size)
    ).all()
    if not rows:
        return 0
    quote = session.get_bind().dialect.identifier_preparer.quote
    match = " AND ".join(f"{quote(k.name)} = :key_{i}" for i, k in enumerate(keys))
    statement = text(
        f"UPDATE {quote(target.table.name)} SET {quote(target.column.name)} = :new "
        f"WHERE {match} AND {quote(target.column.name)} = :old"
    ).bindparams(*(bindparam(f"key_{i}", type_=k.type) for i, k in enumerate(keys)),
                 bindparam("new", type_=Text()), bindparam("old", type_=Text()))
    session.execute(statement, [
        {**{f"key_{i}": row[i] for i in range(len(keys))}, "old": row.sealed, "new": crypto.reseal(row.sealed)}
        for row in rows
    ])
    return len(rows)


def count_by_version(session) -> dict[str, int]:
    """How many stored values are sealed under each key version ("k1", "k2", ... or "unknown")."""
    counts: dict[str, int] = {}
    for target in encrypted_columns():
        total = session.execute(
            select(func.count()).select_from(target.table).where(target.column.is_not(None))
        ).scalar_one()
        seen = 0
        for version in crypto.known_versions():
            found = session.execute(select(func.count()).select_from(target.table).where(
                target.stored.like(crypto.prefix(version) + "%"))).scalar_one()
            if found:
                counts[f"k{version}"] = counts.get(f"k{version}", 0) + found
            seen += found
        if total - seen:
            counts["unknown"] = counts.get("unknown", 0) + total - seen
    return counts
