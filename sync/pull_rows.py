"""Pulled records as plain rows: which columns a pull selects per entity, and how a row becomes the
``data`` of an upsert, identical to ``models.schemas.dump_record(record)``.

A first pull sends thousands of records; building, then dumping, an ORM object for each was most of
its cost. Here each entity's select names only the columns ``dump_record`` sends (plus ``seq`` and
``deleted_at``), so restricted (CAAFAG) columns are never even read from the database for a device;
the encrypted columns still decrypt in the column types' result processing. Values stay as the
column types give them (UUIDs, dates and times included): the encoder (orjson, sync.pull) writes
them exactly as ``json_value`` would, so almost nothing is converted in Python. The column list is
worked out once per entity.
"""

import functools
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    String,
    Text,
    Uuid,
    cast,
    inspect,
    type_coerce,
)
from sqlalchemy.types import JSON

from models.accounts import User
from models.base import UTCDateTime, db
from models.children import Child
from models.crypto import EncryptedDate, EncryptedJSON, EncryptedText
from models.lifecycle import phase_of
from models.records import ENTITY_OF, json_value
from models.schemas import _dumped_keys

# Column types whose values orjson writes as json_value would: as they are, UUIDs as their text, dates
# and times in ISO 8601 (naive ones as UTC: ENCODING); the others are converted with json_value.
_AS_IS = (String, Integer, BigInteger, Boolean, EncryptedText, Uuid, Date, UTCDateTime, EncryptedDate)
# What the encoder is told: a timestamp read without UTCDateTime's processing (SQLite's come back naive)
# is written in UTC with "+00:00", exactly as the aware value would be.
ENCODING = orjson.OPT_NAIVE_UTC
# Entities a device holds only in some statuses; in any other, the record is sent as a removal.
LIVE_STATUSES = {"alert": ("open",), "tracing_request": ("open", "matched")}


def _selected(column):
    """The column as the pull selects it. Timestamps skip UTCDateTime's per-value Python step (ENCODING
    gives SQLite's naive ones their zone); JSON is read as its text (encrypted JSON decrypted), which
    goes into the answer as it is (an orjson.Fragment: the same JSON value, without a parse and a
    re-encode)."""
    if isinstance(column.type, UTCDateTime):
        return type_coerce(column, DateTime(timezone=True)).label(column.key)
    if isinstance(column.type, EncryptedJSON):
        return type_coerce(column, EncryptedText()).label(column.key)
    if isinstance(column.type, JSON):
        return cast(column, Text).label(column.key)
    return column


def _converter(column):
    if isinstance(column.type, (EncryptedJSON, JSON)):
        return orjson.Fragment
    if type(column.type) in _AS_IS:
        return None
    return json_value  # a type this module does not know: the generic conversion, never a wrong one


@dataclass(frozen=True)
class Shape:
    """What a pull selects for one entity and where things sit in its rows."""

    entity: str
    columns: tuple  # the dumped columns in dump_record's order, then seq and deleted_at
    keys: tuple[str, ...]  # the data keys, in the same order (``caseworker`` for ``caseworker_id``)
    convert: tuple[tuple[str, object], ...]  # (key, function) for the values JSON cannot carry as they are
    id_at: int
    version_at: int
    child_at: int | None  # where the child's id is: its own id for a child, child_id for its records
    status_at: int | None  # the status of an entity of LIVE_STATUSES
    live: tuple  # its statuses a device holds
    seq_at: int
    deleted_at: int
    caseworker_at: int | None  # where the caseworker's username is (selected with the row)


@functools.cache
def shape_of(model) -> Shape:
    keys = _dumped_keys(model, False)
    mapper = inspect(model)
    columns = [mapper.column_attrs[key].columns[0] for key in keys]
    convert = tuple((key, fn) for key, column in zip(keys, columns, strict=True)
                    if key != "caseworker_id" and (fn := _converter(column)) is not None)
    child_key = "id" if model is Child else ("child_id" if "child_id" in keys else None)
    return Shape(
        entity=ENTITY_OF[model],
        columns=(*map(_selected, (*columns, model.__table__.c.seq, model.__table__.c.deleted_at)),
                 *([_username(model)] if "caseworker_id" in keys else [])),
        keys=tuple("caseworker" if key == "caseworker_id" else key for key in keys),
        convert=convert,
        id_at=keys.index("id"),
        version_at=keys.index("version"),
        child_at=keys.index(child_key) if child_key else None,
        status_at=keys.index("status") if model.__tablename__ in LIVE_STATUSES else None,
        live=LIVE_STATUSES.get(model.__tablename__, ()),
        seq_at=len(keys),
        deleted_at=len(keys) + 1,
        caseworker_at=len(keys) + 2 if "caseworker_id" in keys else None,
    )


def _username(model):
    """The caseworker's username, looked up by key in the row's own select (a device sees usernames,
    not user ids): no query of its own, whichever select reads the rows."""
    return (db.select(User.username).where(User.id == model.caseworker_id).scalar_subquery()
            .label("caseworker_username"))


def row_data(shape: Shape, row) -> dict:
    """The upsert's ``data`` for a selected row."""
    data = dict(zip(shape.keys, row, strict=False))  # stops before seq and deleted_at
    for key, fn in shape.convert:
        value = data[key]
        if value is not None:
            data[key] = fn(value)
    if shape.caseworker_at is not None:
        data["caseworker"] = row[shape.caseworker_at]
    if shape.entity == "child" and "stage" in data:
        data["phase"] = phase_of(data["stage"])
    return data


__all__ = ["Shape", "row_data", "shape_of"]
