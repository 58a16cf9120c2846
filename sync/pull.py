"""Answering a device's pull (DESIGN §5): its scope, changed since its cursor, one keyset page at a time.

The scope is the children assigned to the device's caseworker, their records (referrals among them),
the alerts addressed to that caseworker, and the tracing requests they follow (sync.pull_tracing). Changes are ordered by the server-wide change sequence ``seq``. A page covers a
window of sequence numbers ``(after, upper]`` found with one UNION ALL over the entity tables, which
also says which table each change is in; then each table with changes on the page is read once, by
those sequence numbers: a page costs a fixed number of queries, whatever its size.

The window never goes beyond the change counter's committed value, read in the window's own
statement. The counter row is locked by every writer until it commits (models.changes), so every
sequence number at or below the committed value belongs to a committed row: a change that commits
late always gets a number above any cursor already handed out, and is never skipped.

A page is one transaction of a fixed number of statements, whatever its size: the device (with its
account), the window, one read per source with changes on the page (and, for scope changes on it,
a read per table of the children or requests they move), the audit row and its children
(server.sync_endpoint), one commit.
"""

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from sqlalchemy import BigInteger, Integer, Text, any_, bindparam, cast, literal_column, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from models.accounts import Device
from models.base import db
from models.care import Assessment, Consent, Service
from models.changes import ChangeCounter, ScopeChange
from models.children import Child
from models.errors import Problem
from models.followups import Alert, Followup
from models.lifecycle import StageTransition
from models.records import ENTITY_OF
from models.referrals import Referral
from sync.pull_rows import ENCODING, row_data, shape_of
from sync.pull_tracing import request_scope_events, tracing_sources

CHILD_RECORDS = (Consent, StageTransition, Assessment, Service, Followup, Referral)


@dataclass
class Page:
    changes: list[dict]
    upper: int  # the sequence number the next cursor stands on
    has_more: bool
    children: set  # the ids of the children whose values the page carries (for the audit)
    requests: set  # the ids of the tracing requests it carries


def _page(changes: list[dict], upper: int, has_more: bool) -> Page:
    """The page, with the children each upsert carries (a child, or a child's record) and the tracing
    requests: what its audit row names."""
    children, requests = set(), set()
    for change in changes:
        if change["op"] == "upsert":
            if change["entity"] == "tracing_request":
                requests.add(change["id"])
            elif child_id := change["id"] if change["entity"] == "child" else change["data"].get("child_id"):
                children.add(child_id)
    return Page(changes, upper, has_more, children, requests)


# ---- cursors --------------------------------------------------------------------------------------
# A cursor is "<device id>:<seq>" and an HMAC over it, base64url-encoded: opaque to the device, bound
# to it, and not forgeable into another device's stream.

def encode_cursor(device: Device, seq: int, secret_key: str) -> str:
    body = f"{device.id}:{seq}"
    return base64.urlsafe_b64encode(f"{body}:{_sign(body, secret_key)}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, device: Device, secret_key: str) -> int:
    invalid = Problem("invalid_cursor", "The cursor is not one this server gave this device. "
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
    if 0 < after < horizon:
        raise Problem("resync_required", "The cursor is older than the server can answer "
                        "incrementally. Clear local data and pull from empty.")
    plan = _plan(after == 0, db.session.get_bind().dialect.name)
    rows = _execute(plan.window, {"user_id": device.user_id, "after": after, "count": limit + 1}).all()
    ceiling = next(seq for seq, source in rows if source == -1)
    window = sorted((seq, source) for seq, source in rows if source != -1)
    if after > ceiling:
        raise Problem("resync_required", "The server does not know this cursor (it is ahead of the "
                        "server's changes, e.g. after a restore). Clear local data and pull from empty.")
    if len(window) > limit:
        upper, has_more = window[limit - 1][0], True
        window = window[:limit]
    else:
        upper, has_more = ceiling, False
    seqs = {}  # source index -> the seqs of its rows on the page
    for seq, source in window:
        seqs.setdefault(source, []).append(seq)
    return _page(_changes(plan, device.user_id, seqs), upper, has_more)


def _execute(stmt, params=None):
    """Run a select on the session's connection (its transaction) without the ORM's result layer:
    the pull selects columns, never entities, and the ORM's wrapping of each row cost a tenth of a page."""
    return db.session.connection().execute(stmt, params or {})


@dataclass(frozen=True)
class _Plan:
    """The statements of a page, built once per kind of page (first or later) with bind parameters
    (user_id, after, count, seqs, lowest, highest): building them anew for every page cost more than
    running some of them."""

    sources: list  # (model, condition on its own row, in scope through its child?)
    window: object
    reads: list  # per source, the select of its rows by seq (a child's record: and whether it is in scope)
    seqs_as_text: bool  # the reads take the seqs as an array's text (PostgreSQL), not a list

    def seqs_param(self, seqs: list[int]):
        return "{" + ",".join(map(str, seqs)) + "}" if self.seqs_as_text else seqs


@functools.cache
def _plan(full: bool, dialect: str) -> _Plan:
    postgresql = dialect == "postgresql"
    sources, own_children = _sources(bindparam("user_id"), full)
    reads = []
    for model, cond, via_child in sources:
        columns = ((ScopeChange.child_id, ScopeChange.kind, ScopeChange.seq, ScopeChange.tracing_request_id)
                   if model is ScopeChange
                   else shape_of(model).columns)
        # PostgreSQL takes the page's seqs as one array: the statement's text stays the same whatever
        # their number (an IN list of n parameters is a new statement each time). The array is sent as
        # its text ("{1,2,3}", see _Plan.seqs_param): psycopg adapting a list of ints took 0.13 ms of CPU
        # for 250 of them, the text 0.02 ms.
        on_page = (model.seq == any_(cast(bindparam("seqs", type_=Text), ARRAY(BigInteger))) if postgresql
                   else model.seq.in_(bindparam("seqs", expanding=True)))
        # The range the seqs span, redundant but for the planner: without statistics (a fresh or
        # restored database, no autovacuum yet) PostgreSQL reckons each element of ``= ANY`` matches
        # 0.5 % of the table, so 50 seqs a quarter of it, and read the whole table for them (1.2 ms a
        # page at 10,000 rows, growing with the table); the range makes the seq index the cheap path
        # whatever the statistics say (0.02 ms).
        span = model.seq.between(bindparam("lowest"), bindparam("highest"))
        if via_child:
            # The scope checked again when the rows are read, in the same statement: an uncorrelated
            # IN that both databases evaluate once for the statement (in the select list, it cannot
            # change how the rows are found).
            columns = (*columns, model.child_id.in_(own_children).label("in_scope"))
        reads.append(db.select(*columns).where(on_page, span, *cond))
    return _Plan(sources, _window_query(sources, own_children, postgresql), reads, postgresql)


def _sources(user_id, full: bool) -> tuple[list[tuple], object]:
    """(model, condition on its own row, whether it is in scope through its child) for each table a
    device's stream draws from, and the select of the children in scope."""
    own_children = db.select(Child.id).where(Child.caseworker_id == user_id)
    if full:
        own_children = own_children.where(Child.deleted_at.is_(None))
    sources = [(Child, [Child.caseworker_id == user_id], False)]
    sources += [(model, [], True) for model in CHILD_RECORDS]
    sources.append((Alert, [Alert.recipient_id == user_id], False))
    if full:
        # An empty device needs no removals: only live records, and only open alerts.
        sources = [(m, [*cond, m.deleted_at.is_(None)], via_child) for m, cond, via_child in sources]
        sources[-1][1].append(Alert.status == "open")
    else:
        sources.append((ScopeChange, [ScopeChange.user_id == user_id], False))
    sources += tracing_sources(user_id, full)
    return sources, own_children


def _window_query(sources, own_children, lateral: bool):
    """The first ``count`` changes after the cursor ``after`` (a bind parameter) and up to the change
    counter's committed value, the ceiling: (seq, index of the source), in no particular order, and
    the row (ceiling, -1). The counter is read in the same statement (one round trip less a page), so
    in the same snapshot on PostgreSQL: every seq at or below the value it reads is a committed row
    that the statement sees.

    A child's records are found child by child in the (child_id, seq) index: each child in scope,
    then its changes after the cursor. That costs a probe per child and table, whatever other
    caseloads hold and whatever the planner knows. On PostgreSQL the walk is a LATERAL join, each
    child's part capped at ``count``: with a plain IN and no fresh statistics, the planner read every
    change after the cursor and looked its child up by key (14 ms a page in bench/sync_pull_bench.py,
    against about 4 ms now). SQLite, which has no LATERAL, makes that nested loop of the plain join
    by itself.
    """
    after, count = bindparam("after"), bindparam("count")
    ceiling = db.select(ChangeCounter.value).where(ChangeCounter.id == 1).scalar_subquery()
    own = own_children.cte("own")  # the caseload read once for the page, not once per table
    parts = []
    for source, (model, cond, via_child) in enumerate(sources):
        tag = literal_column(str(source), Integer).label("source")
        where = (model.seq > after, model.seq <= ceiling, *cond)
        if not via_child:
            first = db.select(model.seq.label("seq"), tag).where(*where).order_by(model.seq).limit(count).subquery()
            parts.append(db.select(first.c.seq, first.c.source))
        elif lateral:
            own_changes = (db.select(model.seq.label("seq")).where(model.child_id == own.c.id, *where)
                           .order_by(model.seq).limit(count).lateral())
            parts.append(db.select(own_changes.c.seq, tag).select_from(own).join(own_changes, true()))
        else:
            parts.append(db.select(model.seq.label("seq"), tag).select_from(own)
                         .join(model, model.child_id == own.c.id).where(*where))
    window = union_all(*parts).subquery()
    first = db.select(window.c.seq, window.c.source).order_by(window.c.seq).limit(count).subquery()
    return union_all(db.select(ChangeCounter.value, literal_column("-1", Integer)).where(ChangeCounter.id == 1),
                     db.select(first.c.seq, first.c.source))


def _changes(plan: _Plan, user_id, seqs: dict) -> list[dict]:
    """The page's changes in sequence order; within a page, only the last word on each record.

    Every query runs here, before the response starts. Records are selected as rows of the columns a device may see (sync.pull_rows), not as
    ORM objects, and by their seq (unique, indexed): the window query already found which rows are on
    the page. The scope is checked again, and a record changed since the window query has a new seq, so
    a record changed or moved out of scope meanwhile is left to the page its new change falls on. (By id
    instead, binding and reading the UUIDs cost more than the lookups saved.) A child's record comes
    with whether its child is in scope, worked out in its read (see _plan): as a condition there, the
    planner (SQLite) walked the whole caseload by child_id instead of looking the rows up by key.
    """
    events = []  # (seq, tiebreak, entity, record id, (shape, row) or a ready removal dict)
    scope_changes = []
    deleted = {}  # deleted child id -> seq: a deleted child takes its records with it
    for source, (model, _cond, via_child) in enumerate(plan.sources):
        if source not in seqs:
            continue
        on_page = seqs[source]  # in seq order, as the window gave them
        rows = _execute(plan.reads[source], {"user_id": user_id, "seqs": plan.seqs_param(on_page),
                                             "lowest": on_page[0], "highest": on_page[-1]}).all()
        if model is ScopeChange:
            scope_changes = rows
            continue
        shape = shape_of(model)
        if via_child:
            rows = [row for row in rows if row[-1]]  # in_scope
        for row in rows:
            events.append((row[shape.seq_at], 0, shape.entity, row[shape.id_at], (shape, row)))
            if model is Child and row[shape.deleted_at] is not None:
                deleted[row[shape.id_at]] = row[shape.seq_at]
    read = len(events)
    events += _expand([sc for sc in scope_changes if sc.child_id is not None], deleted, user_id)
    events += request_scope_events([sc for sc in scope_changes if sc.tracing_request_id is not None], user_id,
                                   _removal)
    events.sort(key=lambda e: (e[0], e[1]))
    if len(events) == read:
        # Only rows read by their seq: each record once (it has one seq, in one table), so nothing to
        # choose between. A first pull's pages are all like this (the choice was 0.05 s of the 0.8 s
        # of CPU of a profiled 10,000-record first pull).
        return [_change(event[4]) for event in events]
    last = {}
    for position, event in enumerate(events):
        last[(event[2], event[3])] = position
    kept = [event for position, event in enumerate(events) if last[(event[2], event[3])] == position]
    return [_change(event[4]) for event in kept]


def _expand(scope_changes, deleted_children: dict, user_id) -> list[tuple]:
    """A caseworker losing a child loses it and its records; one gaining it gets them all.

    Records are read as they are now, so a child gained and since handed on (its "remove" on a later
    page) is not sent: between the two pages the device would hold another caseworker's child."""
    events = []
    removed = {**deleted_children, **{sc.child_id: sc.seq for sc in scope_changes if sc.kind == "remove"}}
    removed.update(_merged_away(deleted_children, user_id))
    added = {sc.child_id: sc.seq for sc in scope_changes if sc.kind == "add"}
    if added:
        still_ours = _execute(db.select(Child.id).where(
            Child.id.in_(list(added)), Child.caseworker_id == user_id)).scalars()
        added = {child_id: added[child_id] for child_id in still_ours}
    if removed:
        # A removal is an id and a version: nothing is decrypted for it.
        ids = list(removed)
        for model in (Child, *CHILD_RECORDS):
            key = model.id if model is Child else model.child_id
            entity = ENTITY_OF[model]
            events += [(removed[child_id], 1, entity, record_id, _removal(entity, record_id, version))
                       for record_id, version, child_id in _execute(
                           db.select(model.id, model.version, key).where(key.in_(ids)))]
    if added:
        ids = list(added)
        for model in (Child, *CHILD_RECORDS):
            shape = shape_of(model)
            key = model.id if model is Child else model.child_id
            stmt = db.select(*shape.columns).where(key.in_(ids), model.deleted_at.is_(None))
            events += [(added[row[shape.child_at]], 1, shape.entity, row[shape.id_at], (shape, row))
                       for row in _execute(stmt)]
    return events


def _merged_away(deleted_children: dict, user_id) -> dict:
    """A child merged into one outside this caseload (models.merging) took its records with it: the
    device drops them with the child, so survivor id -> the absorbed child's seq. (It is sent removals
    of the survivor's other records too: ids and versions it never held, nothing decrypted.) A survivor
    in the caseload is left out: its records, moved ones included, come as upserts."""
    if not deleted_children:
        return {}
    survivor = db.aliased(Child)
    rows = db.session.execute(
        db.select(Child.id, Child.merged_into).join(survivor, survivor.id == Child.merged_into)
        .where(Child.id.in_(list(deleted_children)),
               (survivor.caseworker_id != user_id) | survivor.caseworker_id.is_(None))).all()
    return {into: deleted_children[child_id] for child_id, into in rows}


def _removal(entity: str, record_id, version: int) -> dict:
    return {"entity": entity, "id": str(record_id), "version": version, "op": "remove"}


def _change(item) -> dict:
    if isinstance(item, dict):  # a removal worked out from the scope
        return item
    shape, row = item
    record_id, version = row[shape.id_at], row[shape.version_at]
    if row[shape.deleted_at] is not None or (shape.status_at is not None and row[shape.status_at] not in shape.live):
        return _removal(shape.entity, record_id, version)
    return {"entity": shape.entity, "id": str(record_id), "version": version, "op": "upsert",
            "data": row_data(shape, row)}


# Changes are encoded a group at a time: one encoder call per group rather than per change, while
# the answer still streams in pieces of bounded size. orjson writes UUIDs, dates and times itself
# (sync.pull_rows leaves them as they are) and is several times faster than the json module here.
ENCODE_GROUP = 100


def encode_changes(changes: Iterator[dict]) -> Iterator[bytes]:
    """JSON of the changes (UTF-8), comma-separated, a group of changes at a time."""
    first = True
    for group in _groups(changes):
        text = orjson.dumps(group, option=ENCODING)[1:-1]
        yield text if first else b"," + text
        first = False


def _groups(changes: Iterator[dict]) -> Iterator[list]:
    group = []
    for change in changes:
        group.append(change)
        if len(group) == ENCODE_GROUP:
            yield group
            group = []
    if group:
        yield group


__all__ = ["Page", "decode_cursor", "encode_cursor", "encode_changes", "pull"]
