"""Ingesting a device's push batch (DESIGN §5). ``ingest`` reads top to bottom as its steps:

1. **Load** what the batch touches in a few set-based queries: the records it names and their
   children, mutation ids seen, case codes taken, ids with history, the history a stale update merges
   against, when each moved child was first reunified.
2. **Decide** each mutation in order, in memory, with plain functions: validation, scope, lifecycle,
   merge and conflicts, duplicates, ``parent_rejected``. A refusal is a ``Problem`` raised before the
   mutation changed anything, so it leaves no trace but its result; an applied mutation changes the
   in-memory records, which later ones read.
3. **Log**, then **write**: every new mutation verbatim with its outcome, in one statement, before
   anything it decided is written; then the decided rows, one statement per table (models.change_set).
   One transaction: the log and the changes it led to are committed together or not at all.

It never commits: the endpoint commits, then plans the touched children (models.unit_of_work).
"""

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from marshmallow import ValidationError
from sqlalchemy import insert, update

from models import audit
from models.accounts import Device
from models.base import db
from models.change_set import ChangeSet, new, time_ordered_id
from models.changes import ChangeCounter
from models.children import Child, case_code_for
from models.errors import Problem
from models.history import RecordHistory
from models.plain_load import load
from models.records import (
    ENTITIES,
    Actor,
    Move,
    add_child,
    add_move,
    add_record,
    change_record,
    check_case_code,
    check_move,
    check_record_create,
    check_update,
    follow_up_since,
    json_value,
)
from models.schemas import FIELD_SCHEMAS
from models.sensitivity import RESTRICTED, fields_of
from models.syncstate import Conflict, MutationLog, SyncBatch

STATUSES = ("applied", "duplicate", "conflict", "rejected")
# One answer for "no such record" and "not yours": anything else would tell a device that an id exists.
NOT_IN_CASELOAD = ("No such record in your caseload. If the child was reassigned, pull to receive the "
                   "current caseload.")


@dataclass
class PushOutcome:
    results: list[dict]
    replayed: bool = False
    child_ids: set = field(default_factory=set)
    counts: dict = field(default_factory=dict)


@dataclass
class _Batch:
    """What the batch loaded, and what its decisions so far changed."""

    device: Device
    actor: Actor
    today: date
    rules: dict
    known: dict  # (entity, id) -> record, loaded or created in this batch
    taken_codes: set  # case codes of new children's ids already in use
    used_ids: set  # ids of records with history, of any entity
    history: dict  # record id -> its history rows in the database, in version order (where needed)
    follow_up: dict  # child id -> when first reunified (children the batch moves)
    changes: ChangeSet = field(default_factory=ChangeSet)
    rejected_creates: set = field(default_factory=set)  # (entity, id) of creates refused in this batch
    held_through_merge: set = field(default_factory=set)  # survivors of children merged out of this caseload
    child_ids: set = field(default_factory=set)

    @property
    def user(self):
        return self.device.user

    def history_of(self, record_id) -> list[dict]:
        return self.history.get(record_id, []) + self.changes.history_of.get(record_id, [])


def ingest(envelope: dict, raw_mutations: list, device: Device, *, today: date, rules: dict) -> PushOutcome:
    """Apply a validated envelope for ``device``. ``raw_mutations`` are the mutations as sent, for the log."""
    session = db.session
    _serialise_writers()
    batch_id = envelope["batch_id"]
    batch = session.get(SyncBatch, batch_id)
    if batch is not None:
        if batch.device_id != device.id:
            raise Problem("id_conflict", "This batch_id was already used by another device; "
                            "send the batch again with a new batch_id.")
        return PushOutcome(results=batch.results, replayed=True)

    mutations = envelope["mutations"]
    batch = SyncBatch(batch_id=batch_id, device_id=device.id, user_id=device.user_id, mutations=len(mutations))
    session.add(batch)
    session.flush()
    seen = _seen_before([m["mutation_id"] for m in mutations])
    state = _load(mutations, device, today, rules)
    results, outcomes = _decide_all(mutations, seen, state)
    _log(batch_id, device, mutations, raw_mutations, outcomes)
    state.changes.write()

    counts = {status: sum(1 for r in results if r["status"] == status) for status in STATUSES}
    batch.results = results
    batch.applied, batch.duplicates = counts["applied"], counts["duplicate"]
    batch.conflicts, batch.rejected = counts["conflict"], counts["rejected"]
    # The children the batch changed, one row each: the trail of every create and edit from devices.
    audit("sync.push", actor=device.user_id, device=device.id, target=batch_id, children=state.child_ids,
          mutations=len(mutations), **counts)
    session.flush()
    return PushOutcome(results=results, child_ids=state.child_ids, counts=counts)


def _serialise_writers() -> None:
    """Take the change-sequence row lock for the whole batch before reading anything.

    Every writer takes this lock when it stamps its changes anyway (models.changes), so taking it first
    costs little concurrency and buys a lot: the batch's checks (seen mutation ids, versions) read state
    no other writer can change until this batch commits, on PostgreSQL as on SQLite (where this first
    write takes the database's write lock).
    """
    counter = ChangeCounter.__table__
    db.session.execute(update(counter).where(counter.c.id == 1).values(value=counter.c.value))


# Log.

def _seen_before(mutation_ids: list) -> dict:
    if not mutation_ids:
        return {}
    rows = db.session.execute(
        db.select(MutationLog.mutation_id, MutationLog.status, MutationLog.result)
        .where(MutationLog.mutation_id.in_(set(mutation_ids)))
    ).all()
    return {row.mutation_id: {"status": row.status, **(row.result or {})} for row in rows}


def _log(batch_id, device, mutations, raw_mutations, outcomes: dict) -> None:
    """Store every new mutation verbatim with its outcome (DESIGN §5), in one executemany of the table
    (not the mapped class); a mutation_id twice in the batch is logged at its first position."""
    rows = []
    for position, (mutation, raw) in enumerate(zip(mutations, raw_mutations, strict=True)):
        result = outcomes.pop(mutation["mutation_id"], None)  # None: seen before, or logged already
        if result is not None:
            rows.append({"mutation_id": mutation["mutation_id"], "batch_id": batch_id, "device_id": device.id,
                         "position": position, "entity": mutation["entity"], "record_id": mutation["id"],
                         "op": mutation["op"], "payload": raw, "status": result["status"],
                         "result": {k: v for k, v in result.items() if k != "mutation_id"}})
    if rows:
        db.session.execute(insert(MutationLog.__table__), rows)


# Load.

def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _load(mutations: list, device: Device, today: date, rules: dict) -> _Batch:
    known = _records_named(mutations)
    creates = [m for m in mutations if m["op"] == "create"]
    # A stale update merges against the history since its base; a record updated twice in the batch
    # may become stale through the first update. A create of an existing id compares with version 1.
    bases = defaultdict(list)
    for m in mutations:
        if m["op"] == "update" and (record := known.get((m["entity"], m["id"]))) is not None:
            bases[record].append(m["base_version"])
    merged = {record.id for record, sent in bases.items() if len(sent) > 1 or min(sent) < record.version}
    compared = {m["id"] for m in creates if (m["entity"], m["id"]) in known}
    moved = {cid for m in creates if m["entity"] == "stage_transition"
             if (cid := _uuid_or_none(m["changes"].get("child_id"))) is not None}
    # Ids with history under any entity: history is keyed by record id and version, so a create of such
    # an id would clash with the other record.
    used = _present(RecordHistory.record_id, {m["id"] for m in creates}, RecordHistory.version == 1)
    taken = _present(Child.case_code, {case_code_for(m["id"]) for m in creates if m["entity"] == "child"})
    return _Batch(device=device, actor=Actor(user=device.user, source="device", device=device), today=today,
                  rules=rules, known=known, taken_codes=taken, used_ids=used, history=_history(merged | compared),
                  follow_up=follow_up_since(moved), held_through_merge=_held_through_merge(known, device.user_id))


def _records_named(mutations: list) -> dict:
    """Every record the batch names and every child they belong to: one query per entity."""
    ids = defaultdict(set)
    child_ids = set()
    for m in mutations:
        if m["entity"] == "child":
            child_ids.add(m["id"])
        else:
            ids[m["entity"]].add(m["id"])
            if (cid := _uuid_or_none(m["changes"].get("child_id"))) is not None:
                child_ids.add(cid)
    known = {}
    for entity, wanted in ids.items():
        model = ENTITIES[entity]
        for record in db.session.execute(db.select(model).where(model.id.in_(wanted))).scalars():
            known[(entity, record.id)] = record
            if getattr(record, "child_id", None) is not None:
                child_ids.add(record.child_id)
    if child_ids:
        for child in db.session.execute(db.select(Child).where(Child.id.in_(child_ids))).unique().scalars():
            known[("child", child.id)] = child
    return known


def _held_through_merge(known: dict, user_id) -> set:
    """Merges (models.merging): survivors of children of this caseload merged away, among the children
    the batch names or whose records it names. A device that still holds the absorbed child writes to
    the survivor (docs/sync-protocol.md); survivors are loaded into ``known``. One query."""
    child_ids = [cid for (entity, cid) in known if entity == "child"]
    if not child_ids:
        return set()
    rows = db.session.execute(db.select(Child.id, Child.merged_into).where(
        Child.caseworker_id == user_id, Child.merged_into.is_not(None),
        (Child.id.in_(child_ids)) | (Child.merged_into.in_(child_ids)))).all()
    survivors = {into for _id, into in rows}
    missing = survivors - {cid for (entity, cid) in known if entity == "child"}
    if missing:
        for child in db.session.execute(db.select(Child).where(Child.id.in_(missing))).unique().scalars():
            known[("child", child.id)] = child
    return survivors


def _present(column, values: set, *where) -> set:
    """Which of ``values`` the column holds (one query)."""
    if not values:
        return set()
    return set(db.session.execute(db.select(column).where(column.in_(values), *where)).scalars())


def _history(record_ids: set) -> dict:
    if not record_ids:
        return {}
    history = defaultdict(list)
    rows = db.session.execute(
        db.select(RecordHistory.record_id, RecordHistory.version, RecordHistory.fields, RecordHistory.values)
        .where(RecordHistory.record_id.in_(record_ids)).order_by(RecordHistory.record_id, RecordHistory.version)
    ).all()
    for row in rows:
        history[row.record_id].append({"version": row.version, "fields": row.fields, "values": row.values})
    return history


# Decide.

def _decide_all(mutations: list, seen: dict, state: _Batch) -> tuple[list, dict]:
    results, outcomes = [], {}
    for mutation in mutations:
        mid = mutation["mutation_id"]
        if mid in seen or mid in outcomes:
            results.append(_duplicate(mid, seen.get(mid) or outcomes[mid]))
            continue
        try:
            result = {"mutation_id": str(mid), **_decide(mutation, state)}
        except Problem as problem:
            # Raised before this mutation changed anything (see the module docstring).
            result = _rejection(mutation, state, problem)
        outcomes[mid] = result
        results.append(result)
    return results, outcomes


def _duplicate(mutation_id, first: dict) -> dict:
    return {"mutation_id": str(mutation_id), "status": "duplicate", "version": first.get("version"),
            "original_status": first["status"], **({"code": first["code"]} if first.get("code") else {})}


def _rejection(mutation: dict, state: _Batch, problem: Problem) -> dict:
    """A refused mutation's result: the problem's code and message, and its per-field messages."""
    if mutation["op"] == "create":
        state.rejected_creates.add((mutation["entity"], mutation["id"]))
    fields = problem.details.get("fields")
    return {"mutation_id": str(mutation["mutation_id"]), "status": "rejected", "code": problem.code,
            "message": problem.message, **({"errors": fields} if fields else {})}


def _decide(mutation: dict, state: _Batch) -> dict:
    entity, op = mutation["entity"], mutation["op"]
    if entity == "alert":
        return _acknowledge(mutation, state)
    if entity in DECISIONS:  # referrals, tracing requests, traces: sync.push_tracing_referrals
        return DECISIONS[entity](mutation, state)
    if entity == "stage_transition" and op == "update":
        raise Problem("validation_error", "A stage transition cannot be changed; record a new one.",
                      {"fields": {"op": ["Stage transitions are append-only: use op 'create'."]}})
    existing = state.known.get((entity, mutation["id"]))
    child_id = _child_id_of(mutation, existing)
    if child_id is not None and ("child", child_id) in state.rejected_creates and entity != "child":
        raise Problem("parent_rejected", "The child this record belongs to was rejected in this batch; "
                      "fix the child first, then send this record again.")
    if op == "update" and existing is None and (entity, mutation["id"]) in state.rejected_creates:
        raise Problem("parent_rejected", "The create of this record was rejected in this batch.")
    data = _loaded(entity, op == "update", mutation["changes"])
    if (merged := _into_survivor(mutation, entity, data, existing, state)) is not None:
        return merged
    if op == "create":
        return _create(mutation, entity, data, existing, state)
    return _update(mutation, entity, data, existing, state)


def _loaded(entity: str, partial: bool, changes: dict) -> dict:
    try:
        return load(FIELD_SCHEMAS[entity], changes, partial=partial)
    except ValidationError as exc:
        raise Problem("validation_error", "Some fields are not valid.", {"fields": exc.normalized_messages()}) from None


def _child_id_of(mutation, existing):
    if mutation["entity"] == "child":
        return mutation["id"]
    if existing is not None:
        return existing.child_id
    return _uuid_or_none(mutation["changes"].get("child_id"))


def _into_survivor(mutation, entity, data, existing, state: _Batch) -> dict | None:
    """A device still holding a child a manager merged away: a new record for it is created under the
    survivor, an edit of the child itself is kept as a conflict on the survivor (models.merging), each
    result naming ``merged_into``. None when the mutation is about no merged child."""
    child = state.known.get(("child", mutation["id"] if entity == "child" else data.get("child_id")))
    if child is None or child.merged_into is None or child.caseworker_id != state.user.id:
        return None
    survivor = state.known[("child", child.merged_into)]
    if entity == "child":
        if mutation["op"] != "update" or existing is None:
            return None  # a create of the absorbed id again: the usual answer (record_deleted)
        from models.merging import absorb_values

        data = _own_caseworker(data, state)
        _in_scope_child(survivor.id, state)  # the survivor's own refusals (deleted …) come first
        _, conflict = absorb_values(state.changes, survivor, data, state.actor, conflict_by=state.user,
                                    device=state.device, mutation_id=mutation["mutation_id"])
        state.child_ids.add(survivor.id)
        result = {"status": "applied", "version": survivor.version, "merged_into": str(survivor.id)}
        if conflict is not None:
            result.update(status="conflict", conflict_id=str(conflict.id), conflicting_fields=conflict.fields)
        return result
    if mutation["op"] != "create":
        return None  # an existing record moved with the merge: it names the survivor already
    result = _create(mutation, entity, {**data, "child_id": survivor.id}, existing, state)
    return {**result, "merged_into": str(survivor.id)}


def _in_scope_child(child_id, state: _Batch) -> Child:
    """The child, if it is in the device's caseload (or holds a child merged away from it) and not
    deleted; a rejection otherwise."""
    child = state.known.get(("child", child_id))
    if child is None or (child.caseworker_id != state.user.id and child.id not in state.held_through_merge):
        raise Problem("out_of_scope", NOT_IN_CASELOAD)
    if child.deleted_at is not None:
        raise Problem("record_deleted", f"Child {child.case_code} was deleted; it can no longer be changed.")
    return child


def _own_caseworker(data: dict, state: _Batch, refusal: str = "A device can only assign children to its own "
                    "caseworker; a manager reassigns children on the web.") -> dict:
    """A device writes only into its own caseworker's caseload."""
    if "caseworker" in data:
        if data["caseworker"] != state.user.username:
            raise Problem("out_of_scope", refusal)
        data = {k: v for k, v in data.items() if k != "caseworker"}
    return data


def _unused_id(rid, state: _Batch) -> None:
    """The last check of a create, as the database would make it when the rows are written."""
    if rid in state.used_ids:
        raise Problem("id_conflict", "The record clashes with one the server already has.")
    state.used_ids.add(rid)


def _create(mutation, entity, data, existing, state: _Batch) -> dict:
    rid, recorded_at, changes = mutation["id"], mutation["recorded_at"], state.changes
    if existing is not None:
        # Someone else's record is "not in your caseload", whatever its content.
        _in_scope_child(existing.id if entity == "child" else existing.child_id, state)
        if _same_content(existing, entity, data, state):
            return {"status": "duplicate", "version": existing.version}
        raise Problem("id_conflict", f"A {entity} with this id already exists with other content; "
                      "create the record with a new id.")
    if entity == "child":
        data = _own_caseworker(data, state)
        check_case_code(rid, case_code_for(rid) in state.taken_codes)
        _unused_id(rid, state)
        record = add_child(changes, {**data, "caseworker_id": state.user.id}, state.actor, record_id=rid,
                           recorded_at=recorded_at, today=state.today)
        state.taken_codes.add(record.case_code)
        child_id = record.id
    else:
        child = _in_scope_child(data["child_id"], state)
        child_id = child.id
        if entity == "stage_transition":
            move = Move(data["to_stage"], data["occurred_on"], data.get("reason"), data.get("closure_reason"),
                        data.get("details"))
            check_move(child, move, state.actor, today=state.today,
                       min_follow_up_days=state.rules["MIN_FOLLOW_UP_DAYS"],
                       follow_up_since=state.follow_up.get(child.id))
            _unused_id(rid, state)
            record = add_move(changes, child, move, state.actor, record_id=rid, recorded_at=recorded_at)
            if move.to_stage == "reunified" and child.id not in state.follow_up:
                state.follow_up[child.id] = move.occurred_on
        else:
            check_record_create(entity, data, child)
            _unused_id(rid, state)
            record = add_record(changes, entity, data, state.actor, record_id=rid, recorded_at=recorded_at)
    state.known[(entity, rid)] = record
    state.child_ids.add(child_id)
    return {"status": "applied", "version": record.version}


@functools.cache
def _restricted(entity: str) -> frozenset:
    return frozenset(fields_of(ENTITIES[entity], RESTRICTED))


def _same_content(record, entity, data, state: _Batch) -> bool:
    """Does a create for an existing id carry what was first created? Compared with version 1.

    Restricted fields are left out of the comparison (and so never written by a duplicate create): a
    device may write them but never read them back, and "duplicate" or "id_conflict" would otherwise
    tell it, one guess a mutation, whether a value it sent is the one stored."""
    data = {k: v for k, v in data.items() if k not in _restricted(entity)}
    if entity == "child" and "caseworker" in data:
        data = {**{k: v for k, v in data.items() if k != "caseworker"},
                "caseworker_id": state.user.id if data["caseworker"] == state.user.username else data["caseworker"]}
    first = next((row["values"] for row in state.history_of(record.id) if row["version"] == 1), {})
    for key, value in data.items():
        reference = first[key] if key in first else json_value(getattr(record, key))
        if json_value(value) != reference:
            return False
    return True


def _update(mutation, entity, data, record, state: _Batch) -> dict:
    if record is None:
        raise Problem("out_of_scope", NOT_IN_CASELOAD)
    # Scope first: "deleted" about a record of someone else's caseload would say that it exists.
    child = _in_scope_child(record.id if entity == "child" else record.child_id, state)
    if record.deleted_at is not None:
        raise Problem("record_deleted", f"This {entity} was deleted on the server; it can no longer be "
                      "changed. Drop the local edit.")
    if "child_id" in data:
        if data.pop("child_id") != record.child_id:
            raise Problem("validation_error", "A record cannot move to another child.",
                          {"fields": {"child_id": ["Cannot be changed."]}})
    if entity == "child":
        data = _own_caseworker(data, state)
    base = mutation["base_version"]
    if base > record.version:
        raise Problem("validation_error", f"base_version {base} is ahead of the server's version "
                      f"{record.version}; pull, then edit again.",
                      {"fields": {"base_version": [f"The server has version {record.version}."]}})
    state.child_ids.add(child.id)
    if base == record.version:
        change_record(state.changes, record, data, state.actor, recorded_at=mutation["recorded_at"])
        return {"status": "applied", "version": record.version}
    return _merge(mutation, entity, data, record, child, state)


def _merge(mutation, entity, data, record, child, state: _Batch) -> dict:
    """The device edited an older version: apply what nobody else touched, keep clashes as a conflict."""
    base = mutation["base_version"]
    history = state.history_of(record.id)
    changed_since = {name for row in history if row["version"] > base for name in row["fields"]}
    apply, clashing = {}, {}
    for key, value in data.items():
        # A restricted field changed since the base clashes whatever its value: "applied" for the
        # stored value and "conflict" for any other would let a device test guesses at it.
        if key in changed_since and (key in _restricted(entity)
                                     or json_value(getattr(record, key)) != json_value(value)):
            clashing[key] = value
        else:
            apply[key] = value
    if not clashing:
        change_record(state.changes, record, apply, state.actor, recorded_at=mutation["recorded_at"])
        return {"status": "applied", "version": record.version}

    base_values = {}
    for row in history:
        if row["version"] > base:
            break
        for key in clashing:
            if key in row["fields"]:
                base_values[key] = row["values"].get(key)
    names = sorted(clashing)
    # Both updates' refusals (a de-identified case, a visit outcome that does not hold) come first.
    writes = [(child, {**apply, "needs_review": True})] if record is child else \
        [(record, apply), (child, {"needs_review": True})]
    for target, fields in writes:
        check_update(target, fields)
    conflict = new(
        Conflict, id=time_ordered_id(), child_id=child.id, entity=entity, record_id=record.id, mutation_id=mutation["mutation_id"],
        device_id=state.device.id, user_id=state.user.id, base_version=base, server_version=record.version,
        fields=names, base_values={k: base_values.get(k) for k in names},
        server_values={k: json_value(getattr(record, k)) for k in names},
        device_values={k: json_value(clashing[k]) for k in names},
    )
    state.changes.rows.append(conflict)
    for target, fields in writes:
        # The child's own edit is the device's, at recorded_at; its needs_review flag alone is the server's.
        change_record(state.changes, target, fields, state.actor,
                      recorded_at=mutation["recorded_at"] if target is record else None)
    return {"status": "conflict", "version": record.version, "conflict_id": str(conflict.id),
            "conflicting_fields": names}


def _acknowledge(mutation, state: _Batch) -> dict:
    """The one thing a device may do to an alert: acknowledge one addressed to its caseworker."""
    if mutation["op"] != "update":
        raise Problem("validation_error", "A device can only acknowledge an alert, not create one.",
                      {"fields": {"op": ["Use op 'update' with status 'acknowledged'."]}})
    alert = state.known.get(("alert", mutation["id"]))
    if alert is None or alert.recipient_id != state.user.id:
        raise Problem("out_of_scope", "No alert with this id addressed to you.")
    _loaded("alert", False, mutation["changes"])
    if alert.deleted_at is not None:
        raise Problem("record_deleted", "This alert was withdrawn.")
    # Acknowledging twice, or after a manager resolved it, changes nothing: the device's wish holds.
    if alert.status == "open":
        change_record(state.changes, alert, {"status": "acknowledged", "acknowledged_by_id": state.user.id},
                      state.actor, recorded_at=mutation["recorded_at"])
    return {"status": "applied", "version": alert.version}


from sync.push_tracing_referrals import DECISIONS  # noqa: E402  (it builds on the functions above)
