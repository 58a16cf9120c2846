"""Answering a device's pull (DESIGN §5): its scope, changed since its cursor, one keyset page at a time.

The scope is the children assigned to the device's caseworker, their records, and the alerts addressed
to that caseworker. Changes are ordered by the server-wide change sequence ``seq``. A page covers a
window of sequence numbers ``(after, upper]`` found with one UNION ALL over the entity tables, then each
table is read once for that window: a page costs a fixed number of queries, whatever its size.

The window never goes beyond the change counter's committed value, read first. The counter row is
locked by every writer until it commits (models.changes), so every sequence number at or below the
committed value belongs to a committed row: a change that commits late always gets a number above
any cursor already handed out, and is never skipped.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import union_all

from models.accounts import Device
from models.base import db
from models.care import Assessment, Consent, Service
from models.changes import ScopeChange, current_seq
from models.children import Child
from models.followups import Alert, Followup
from models.lifecycle import StageTransition
from models.records import ENTITY_OF
from models.schemas import dump_record
from sync.errors import SyncError

CHILD_RECORDS = (Consent, StageTransition, Assessment, Service, Followup)


@dataclass
class Page:
    changes: Iterator[dict]
    upper: int  # the sequence number the next cursor stands on
    has_more: bool


# ---- cursors --------------------------------------------------------------------------------------
# A cursor is "<device id>:<seq>" and an HMAC over it, base64url-encoded: opaque to the device, bound
# to it, and not forgeable into another device's stream.

def encode_cursor(device: Device, seq: int, secret_key: str) -> str:
    body = f"{device.id}:{seq}"
    return base64.urlsafe_b64encode(f"{body}:{_sign(body, secret_key)}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, device: Device, secret_key: str) -> int:
    invalid = SyncError(400, "invalid_cursor", "The cursor is not one this server gave this device. "
                        "Pull without a cursor to start again from empty.")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        device_id, seq, signature = text.split(":")
        seq_number = int(seq)
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not hmac.compare_digest(signature, _sign(f"{device_id}:{seq}", secret_key)) or device_id != str(device.id):
        raise invalid
    if seq_number < 0:
        raise invalid
    return seq_number


def _sign(body: str, secret_key: str) -> str:
    key = hashlib.sha256(f"homecoming-sync-cursor:{secret_key}".encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]


# ---- pages ----------------------------------------------------------------------------------------

def pull(device: Device, after: int, limit: int, *, horizon: int = 0) -> Page:
    """One page of changes after sequence number ``after`` (0: the whole scope)."""
    ceiling = current_seq(db.session)
    if after > ceiling:
        raise SyncError(409, "resync_required", "The server does not know this cursor (it is ahead of the "
                        "server's changes, e.g. after a restore). Clear local data and pull from empty.")
    if 0 < after < horizon:
        raise SyncError(409, "resync_required", "The cursor is older than the server can answer "
                        "incrementally. Clear local data and pull from empty.")
    user_id = device.user_id
    full = after == 0
    sources = _sources(user_id, full)
    seqs = db.session.execute(_window_query(sources, after, ceiling, limit + 1)).scalars().all()
    if len(seqs) > limit:
        upper, has_more = seqs[limit - 1], True
    else:
        upper, has_more = ceiling, False
    return Page(changes=_changes(sources, user_id, after, upper, full), upper=upper, has_more=has_more)


def _sources(user_id, full: bool) -> list[tuple]:
    """(model, scope condition) for each table a device's stream draws from."""
    own_children = db.select(Child.id).where(Child.caseworker_id == user_id)
    if full:
        own_children = own_children.where(Child.deleted_at.is_(None))
    sources = [(Child, [Child.caseworker_id == user_id])]
    sources += [(model, [model.child_id.in_(own_children)]) for model in CHILD_RECORDS]
    sources.append((Alert, [Alert.recipient_id == user_id]))
    if full:
        # An empty device needs no removals: only live records, and only open alerts.
        sources = [(m, [*cond, m.deleted_at.is_(None)]) for m, cond in sources]
        sources[-1][1].append(Alert.status == "open")
    else:
        sources.append((ScopeChange, [ScopeChange.user_id == user_id]))
    return sources


def _window_query(sources, after: int, ceiling: int, count: int):
    # Each table stops after ``count`` rows along its seq index, so a page costs O(limit), not
    # O(everything after the cursor).
    parts = []
    for model, cond in sources:
        first = (db.select(model.seq.label("seq")).where(model.seq > after, model.seq <= ceiling, *cond)
                 .order_by(model.seq).limit(count).subquery())
        parts.append(db.select(first.c.seq))
    window = union_all(*parts).subquery()
    return db.select(window.c.seq).order_by(window.c.seq).limit(count)


def _changes(sources, user_id, after: int, upper: int, full: bool) -> Iterator[dict]:
    """The page's changes in sequence order; within a page, only the last word on each record.

    Every query runs here, before the response starts; only the dumping is left to the iterator.
    """
    events = []  # (seq, tiebreak, entity, record, or (id, removal) for a scope removal)
    scope_changes = []
    for model, cond in sources:
        stmt = db.select(model).where(model.seq > after, model.seq <= upper, *cond)
        if model is ScopeChange:
            scope_changes = db.session.execute(stmt).scalars().all()
            continue
        for record in db.session.execute(stmt).scalars():
            events.append((record.seq, 0, ENTITY_OF[model], record))
    # A deleted child takes its records with it, as a child leaving the scope does.
    deleted = {e[3].id: e[0] for e in events if e[2] == "child" and e[3].deleted_at is not None}
    events += _expand(scope_changes, deleted)
    events.sort(key=lambda e: (e[0], e[1]))
    last = {}
    for position, event in enumerate(events):
        last[(event[2], _id(event[3]))] = position
    return (_change(entity, record) for position, (_seq, _tie, entity, record) in enumerate(events)
            if last[(entity, _id(record))] == position)


def _id(record):
    return record.id if not isinstance(record, tuple) else record[0]


def _expand(scope_changes, deleted_children: dict) -> list[tuple]:
    """A caseworker losing a child loses it and its records; one gaining it gets them all."""
    events = []
    removed = {**deleted_children, **{sc.child_id: sc.seq for sc in scope_changes if sc.kind == "remove"}}
    added = {sc.child_id: sc.seq for sc in scope_changes if sc.kind == "add"}
    if removed:
        # A removal is an id and a version; tuples, not records, so nothing is decrypted for it.
        ids = list(removed)
        events += [(removed[r.id], 1, "child", ("remove", r.id, r.version)) for r in db.session.execute(
            db.select(Child.id, Child.version).where(Child.id.in_(ids)))]
        for model in CHILD_RECORDS:
            events += [(removed[r.child_id], 1, ENTITY_OF[model], ("remove", r.id, r.version))
                       for r in db.session.execute(
                           db.select(model.id, model.version, model.child_id).where(model.child_id.in_(ids)))]
        events = [(seq, tie, entity, (rec[1], rec)) for seq, tie, entity, rec in events]
    if added:
        ids = list(added)
        for model in (Child, *CHILD_RECORDS):
            key = model.id if model is Child else model.child_id
            stmt = db.select(model).where(key.in_(ids), model.deleted_at.is_(None))
            for record in db.session.execute(stmt).scalars():
                child_id = record.id if model is Child else record.child_id
                events.append((added[child_id], 1, ENTITY_OF[model], record))
    return events


def _change(entity: str, record) -> dict:
    if isinstance(record, tuple):  # (id, ("remove", id, version)) from a scope removal
        _, (_op, record_id, version) = record
        return {"entity": entity, "id": str(record_id), "version": version, "op": "remove"}
    if record.deleted_at is not None or (entity == "alert" and record.status != "open"):
        return {"entity": entity, "id": str(record.id), "version": record.version, "op": "remove"}
    return {"entity": entity, "id": str(record.id), "version": record.version, "op": "upsert",
            "data": dump_record(record, restricted=False)}


def encode_changes(changes: Iterator[dict]) -> Iterator[str]:
    """JSON text of the changes, comma-separated, one change at a time."""
    first = True
    for change in changes:
        text = json.dumps(change, separators=(",", ":"))
        yield text if first else "," + text
        first = False


__all__ = ["Page", "decode_cursor", "encode_cursor", "encode_changes", "pull"]
