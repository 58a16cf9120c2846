"""Ingesting a device's push batch (DESIGN §5): log, deduplicate, apply each mutation, merge field by
field, keep conflicts.

``ingest`` flushes and never commits; the endpoint commits once per batch and then runs the follow-up
planning for the children the batch touched. Lookups are made for the whole batch up front (existing
records, their children, mutation ids already seen, taken case codes, ids that have history) so the
per-mutation work is the write itself.

Each mutation is all or nothing, and one failing never touches another, without savepoints: every
refusal, this module's and the domain's (``check_update``, ``check_move``, ``check_record_create``), is
raised before anything of the mutation is written, and a rejected mutation leaves no trace but its
result. The batch is flushed once, at the end.

A batch of creates only (new children and their consents, assessments, services and visits, the usual
registration day) is first decided with the writes deferred: ``records.create_many`` then writes all
records, history rows and first stage transitions with one executemany per table instead of the ORM's
unit of work. Anything it does not cover (an update, a transition, an alert, a record created twice)
stops it before anything is written, and the batch is decided again through the ORM.
"""

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from marshmallow import ValidationError, missing
from sqlalchemy import JSON, String, bindparam, insert, update

from models import audit
from models.accounts import Device
from models.base import db
from models.changes import ChangeCounter
from models.children import Child, case_code_for
from models.errors import Problem
from models.history import RecordHistory
from models.records import (
    ENTITIES,
    Actor,
    check_move,
    check_record_create,
    check_update,
    create_child,
    create_many,
    create_record,
    json_value,
    prepare_create,
    transition,
    update_record,
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
    """What one batch knows while it is applied: the records it loaded or created, the rejections."""

    device: Device
    actor: Actor
    today: date
    rules: dict
    known: dict  # (entity, id) -> record
    rejected_creates: set = field(default_factory=set)  # (entity, id) of creates refused in this batch
    child_ids: set = field(default_factory=set)
    bulk: list | None = None  # on the bulk path: the prepared creates, written at the end
    taken_codes: set = field(default_factory=set)  # case codes of new children's ids already in use
    used_ids: set = field(default_factory=set)  # ids of records with history, of any entity

    @property
    def user(self):
        return self.device.user


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
    _log(batch_id, device, mutations, raw_mutations, seen)

    actor = Actor(user=device.user, source="device", device=device)
    known = _prefetch(mutations)
    taken, used = _taken_codes(mutations), _used_ids(mutations)

    def batch_state(**kw) -> _Batch:
        # Fresh sets and lookups each time: a stopped bulk attempt leaves nothing behind.
        return _Batch(device=device, actor=actor, today=today, rules=rules, known=dict(known),
                      taken_codes=set(taken), used_ids=set(used), **kw)

    results = None
    with session.no_autoflush:
        if _only_creates(mutations, seen):
            try:
                state = batch_state(bulk=[])
                results, in_batch = _apply_all(mutations, seen, state)
            except _NotBulk:
                results = None
        if results is None:
            state = batch_state()
            results, in_batch = _apply_all(mutations, seen, state)
    if state.bulk:
        create_many(state.bulk, actor)
    session.flush()

    _record_outcomes(in_batch)
    counts = {status: sum(1 for r in results if r["status"] == status) for status in STATUSES}
    batch.results = results
    batch.applied, batch.duplicates = counts["applied"], counts["duplicate"]
    batch.conflicts, batch.rejected = counts["conflict"], counts["rejected"]
    # The children the batch changed, one row each: the trail of every create and edit from devices.
    audit("sync.push", actor=device.user_id, device=device.id, target=batch_id, children=state.child_ids,
          mutations=len(mutations), **counts)
    session.flush()
    return PushOutcome(results=results, child_ids=state.child_ids, counts=counts)


class _NotBulk(Exception):
    """The bulk path met a mutation it does not cover (nothing is written yet): decide the batch again
    through the ORM."""


# What the bulk path writes: records created with ``create_child`` / ``create_record``.
BULK_ENTITIES = ("child", "consent", "assessment", "service", "followup")


def _only_creates(mutations: list, seen: dict) -> bool:
    return all(m["op"] == "create" and m["entity"] in BULK_ENTITIES
               for m in mutations if m["mutation_id"] not in seen)


def _apply_all(mutations: list, seen: dict, state: _Batch) -> tuple[list, dict]:
    results, in_batch = [], {}
    for mutation in mutations:
        mid = mutation["mutation_id"]
        if mid in seen or mid in in_batch:
            results.append(_duplicate(mid, seen.get(mid) or in_batch[mid]))
            continue
        try:
            result = {"mutation_id": str(mid), **_apply(mutation, state)}
        except Problem as problem:
            # Raised before anything of this mutation was written (see the module docstring).
            result = _rejection(mutation, state, problem)
        in_batch[mid] = result
        results.append(result)
    return results, in_batch


def _serialise_writers() -> None:
    """Take the change-sequence row lock for the whole batch before reading anything.

    Every writer takes this lock at its first flush anyway (models.changes), so taking it first costs
    little concurrency and buys a lot: the batch's checks (seen mutation ids, versions) read state no
    other writer can change until this batch commits, on PostgreSQL as on SQLite (where this first
    write takes the database's write lock).
    """
    counter = ChangeCounter.__table__
    db.session.execute(update(counter).where(counter.c.id == 1).values(value=counter.c.value))


def _seen_before(mutation_ids: list) -> dict:
    if not mutation_ids:
        return {}
    rows = db.session.execute(
        db.select(MutationLog.mutation_id, MutationLog.status, MutationLog.result)
        .where(MutationLog.mutation_id.in_(set(mutation_ids)))
    ).all()
    return {row.mutation_id: {"status": row.status, **(row.result or {})} for row in rows}


def _log(batch_id, device, mutations, raw_mutations, seen) -> None:
    """Store every new mutation verbatim as "received" before anything is applied (DESIGN §5), with one
    executemany. The attempts below roll back to savepoints taken after this, so the log survives them;
    a mutation_id twice in the batch is logged at its first position."""
    rows, logged = [], set()
    for position, (mutation, raw) in enumerate(zip(mutations, raw_mutations, strict=True)):
        mid = mutation["mutation_id"]
        if mid in seen or mid in logged:
            continue
        logged.add(mid)
        rows.append({"mutation_id": mid, "batch_id": batch_id, "device_id": device.id, "position": position,
                     "entity": mutation["entity"], "record_id": mutation["id"], "op": mutation["op"],
                     "payload": raw, "status": "received"})
    if rows:
        # The table, not the mapped class: a plain executemany, without the ORM's bulk bookkeeping.
        db.session.execute(insert(MutationLog.__table__), rows)


def _record_outcomes(outcomes: dict) -> None:
    """Each logged mutation's outcome, with one executemany UPDATE."""
    if not outcomes:
        return
    table = MutationLog.__table__
    stmt = (update(table).where(table.c.mutation_id == bindparam("mid"))
            .values(status=bindparam("new_status", type_=String), result=bindparam("new_result", type_=JSON)))
    db.session.execute(stmt, [
        {"mid": mid, "new_status": r["status"], "new_result": {k: v for k, v in r.items() if k != "mutation_id"}}
        for mid, r in outcomes.items()
    ])


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _prefetch(mutations: list) -> dict:
    """Load, in one query per entity, every record the batch names and every child they belong to."""
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


def _used_ids(mutations: list) -> set:
    """Ids of the batch's creates that already have history, under any entity (one query): history is
    keyed by record id and version, so such a create would clash with the other record."""
    ids = {m["id"] for m in mutations if m["op"] == "create"}
    if not ids:
        return set()
    return set(db.session.execute(
        db.select(RecordHistory.record_id).where(RecordHistory.record_id.in_(ids), RecordHistory.version == 1)
    ).scalars())


def _taken_codes(mutations: list) -> set:
    """Case codes that new children of this batch would take but are in use (one query)."""
    codes = {case_code_for(m["id"]) for m in mutations if m["entity"] == "child" and m["op"] == "create"}
    if not codes:
        return set()
    return set(db.session.execute(db.select(Child.case_code).where(Child.case_code.in_(codes))).scalars())


def _duplicate(mutation_id, first: dict) -> dict:
    result = {"mutation_id": str(mutation_id), "status": "duplicate", "version": first.get("version"),
              "original_status": first["status"]}
    if first.get("code"):
        result["code"] = first["code"]
    return result


def _rejection(mutation: dict, state: _Batch, problem: Problem) -> dict:
    """A refused mutation's result: the problem's code and message, and its per-field messages."""
    if mutation["op"] == "create":
        state.rejected_creates.add((mutation["entity"], mutation["id"]))
    fields = problem.details.get("fields")
    return {"mutation_id": str(mutation["mutation_id"]), "status": "rejected", "code": problem.code,
            "message": problem.message, **({"errors": fields} if fields else {})}


def _unused_id(rid, state: _Batch) -> None:
    """The last check of a create, as the database would make it when the rows are written."""
    if rid in state.used_ids:
        raise Problem("id_conflict", "The record clashes with one the server already has.")
    state.used_ids.add(rid)


def _apply(mutation: dict, state: _Batch) -> dict:
    entity, op = mutation["entity"], mutation["op"]
    if entity == "alert":
        return _acknowledge(mutation, state)
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
    try:
        data = _schema_for(entity, op == "update", mutation["changes"]).load(mutation["changes"])
    except ValidationError as exc:
        raise Problem("validation_error", "Some fields are not valid.", {"fields": exc.normalized_messages()}) from None
    if op == "create":
        return _create(mutation, entity, data, existing, state)
    return _update(mutation, entity, data, existing, state)


_SCHEMAS: dict = {}


def _schema(entity: str, partial: bool):
    """One schema instance per entity and mode: building one copies every field, loading does not."""
    key = (entity, partial)
    if key not in _SCHEMAS:
        _SCHEMAS[key] = FIELD_SCHEMAS[entity](partial=partial)
    return _SCHEMAS[key]


def _schema_for(entity: str, partial: bool, changes: dict):
    """The entity's schema narrowed to the fields sent (plus the required ones and those with a
    default): marshmallow visits every declared field on each load, 29 for a child, which was most
    of the cost of validating a mutation. Same fields, validators and schema checks, so the same
    result and errors; a name the schema does not know goes to the whole schema, which words it."""
    declared = FIELD_SCHEMAS[entity]._declared_fields
    if not changes.keys() <= declared.keys():
        return _schema(entity, partial)
    return _narrowed_schema(entity, partial, frozenset(changes))


@functools.lru_cache(maxsize=256)
def _narrowed_schema(entity: str, partial: bool, names: frozenset):
    cls = FIELD_SCHEMAS[entity]
    # Declaration order, so the loaded dict lists its keys as the whole schema's does.
    only = [name for name, f in cls._declared_fields.items()
            if name in names or f.required or f.load_default is not missing]
    return cls(partial=partial, only=only)


def _child_id_of(mutation, existing):
    if mutation["entity"] == "child":
        return mutation["id"]
    if existing is not None:
        return existing.child_id
    return _uuid_or_none(mutation["changes"].get("child_id"))


def _in_scope_child(child_id, state: _Batch) -> Child:
    """The child, if it is in the device's caseload and not deleted; a rejection otherwise."""
    child = state.known.get(("child", child_id))
    if child is None or child.caseworker_id != state.user.id:
        raise Problem("out_of_scope", NOT_IN_CASELOAD)
    if child.deleted_at is not None:
        raise Problem("record_deleted", f"Child {child.case_code} was deleted; it can no longer be changed.")
    return child


def _own_caseworker(data: dict, state: _Batch) -> dict:
    """A device writes only into its own caseworker's caseload."""
    if "caseworker" in data:
        if data["caseworker"] != state.user.username:
            raise Problem("out_of_scope", "A device can only assign children to its own caseworker; "
                          "a manager reassigns children on the web.")
        data = {k: v for k, v in data.items() if k != "caseworker"}
    return data


def _create(mutation, entity, data, existing, state: _Batch) -> dict:
    rid, recorded_at = mutation["id"], mutation["recorded_at"]
    if isinstance(existing, _Prepared):
        raise _NotBulk()  # created twice in this batch: compared on the fast path
    if existing is not None:
        # Someone else's record is "not in your caseload", whatever its content.
        _in_scope_child(existing.id if entity == "child" else existing.child_id, state)
        if _same_content(existing, entity, data, state):
            return {"status": "duplicate", "version": existing.version}
        raise Problem("id_conflict", f"A {entity} with this id already exists with other content; "
                      "create the record with a new id.")
    if state.bulk is not None:
        return _create_bulk(mutation, entity, data, state)
    if entity == "child":
        data = _own_caseworker(data, state)
        if case_code_for(rid) in state.taken_codes:
            raise Problem("id_conflict", f"The case code {case_code_for(rid)} derived from this id is taken; "
                          "create the child with a new id.")
        _unused_id(rid, state)
        record = create_child({**data, "caseworker_id": state.user.id}, state.actor, record_id=rid,
                              recorded_at=recorded_at, today=state.today, flush=False, code_checked=True)
        state.taken_codes.add(record.case_code)
        child_id = record.id
    else:
        child = _in_scope_child(data["child_id"], state)
        child_id = child.id
        if entity == "stage_transition":
            db.session.flush()  # the transition rules read earlier transitions of this batch
            move = {"occurred_on": data["occurred_on"], "reason": data.get("reason"),
                    "closure_reason": data.get("closure_reason"), "today": state.today,
                    "min_follow_up_days": state.rules["MIN_FOLLOW_UP_DAYS"]}
            check_move(child, data["to_stage"], state.actor, **move)
            _unused_id(rid, state)
            record = transition(child, data["to_stage"], state.actor, details=data.get("details"),
                                record_id=rid, recorded_at=recorded_at, flush=False, **move)
        else:
            check_record_create(entity, data, child)
            _unused_id(rid, state)
            record = create_record(entity, data, state.actor, record_id=rid, recorded_at=recorded_at,
                                   flush=False)
    state.known[(entity, rid)] = record
    state.child_ids.add(child_id)
    return {"status": "applied", "version": record.version}


@dataclass
class _Prepared:
    """A record of this batch waiting for ``create_many``: what later mutations of the batch read."""

    id: uuid.UUID
    child_id: uuid.UUID | None = None
    case_code: str | None = None
    caseworker_id: uuid.UUID | None = None
    deleted_at: None = None
    version: int = 1


def _create_bulk(mutation, entity, data, state: _Batch) -> dict:
    """``_create`` for a new record on the bulk path: the same checks, the write deferred."""
    rid = mutation["id"]
    if entity == "child":
        data = _own_caseworker(data, state)
        code = case_code_for(rid)
        if code in state.taken_codes:
            raise Problem("id_conflict", f"The case code {code} derived from this id is taken; "
                          "create the child with a new id.")
        data = {**data, "caseworker_id": state.user.id}
        child_id = rid
    else:
        child_id = _in_scope_child(data["child_id"], state).id
    new = prepare_create(entity, data, state.actor, record_id=rid, recorded_at=mutation["recorded_at"],
                         today=state.today)
    _unused_id(rid, state)
    state.bulk.append(new)
    if entity == "child":
        state.taken_codes.add(code)
        state.known[(entity, rid)] = _Prepared(rid, case_code=code, caseworker_id=state.user.id)
    else:
        state.known[(entity, rid)] = _Prepared(rid, child_id=child_id)
    state.child_ids.add(child_id)
    return {"status": "applied", "version": 1}


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
    db.session.flush()  # the history of records created earlier in this batch
    first = db.session.execute(
        db.select(RecordHistory.values).where(RecordHistory.record_id == record.id, RecordHistory.version == 1)
    ).scalar_one_or_none() or {}
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
    recorded_at = mutation["recorded_at"]
    state.child_ids.add(child.id)
    if base == record.version:
        update_record(record, data, state.actor, recorded_at=recorded_at, flush=False)
        return {"status": "applied", "version": record.version}
    return _merge(mutation, entity, data, record, child, state)


def _merge(mutation, entity, data, record, child, state: _Batch) -> dict:
    """The device edited an older version: apply what nobody else touched, keep clashes as a conflict."""
    base = mutation["base_version"]
    db.session.flush()  # the history written earlier in this batch counts too
    history = db.session.execute(
        db.select(RecordHistory.version, RecordHistory.fields, RecordHistory.values)
        .where(RecordHistory.record_id == record.id).order_by(RecordHistory.version)
    ).all()
    changed_since = {name for row in history if row.version > base for name in row.fields}
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
        update_record(record, apply, state.actor, recorded_at=mutation["recorded_at"], flush=False)
        return {"status": "applied", "version": record.version}

    base_values = {}
    for row in history:
        if row.version > base:
            break
        for key in clashing:
            if key in row.fields:
                base_values[key] = row.values.get(key)
    names = sorted(clashing)
    # Decided before anything is written: both updates' refusals (a de-identified case, a visit
    # outcome that does not hold) come first.
    writes = [(child, {**apply, "needs_review": True})] if record is child else \
        [(record, apply), (child, {"needs_review": True})]
    for target, fields in writes:
        check_update(target, fields)
    conflict = Conflict(
        id=uuid.uuid4(), child_id=child.id, entity=entity, record_id=record.id, mutation_id=mutation["mutation_id"],
        device_id=state.device.id, user_id=state.user.id, base_version=base, server_version=record.version,
        fields=names, base_values={k: base_values.get(k) for k in names},
        server_values={k: json_value(getattr(record, k)) for k in names},
        device_values={k: json_value(clashing[k]) for k in names},
    )
    db.session.add(conflict)
    for target, fields in writes:
        # The child's own edit is the device's, at recorded_at; its needs_review flag alone is the server's.
        update_record(target, fields, state.actor, flush=False,
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
    try:
        _schema("alert", False).load(mutation["changes"])
    except ValidationError as exc:
        raise Problem("validation_error", "Some fields are not valid.", {"fields": exc.normalized_messages()}) from None
    if alert.deleted_at is not None:
        raise Problem("record_deleted", "This alert was withdrawn.")
    # Acknowledging twice, or after a manager resolved it, changes nothing: the device's wish holds.
    if alert.status == "open":
        update_record(alert, {"status": "acknowledged", "acknowledged_by_id": state.user.id}, state.actor,
                      recorded_at=mutation["recorded_at"], flush=False)
    return {"status": "applied", "version": alert.version}
