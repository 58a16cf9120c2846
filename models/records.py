"""Creating, changing and moving records: the one path every writer (API, sync, web, CLI) takes.

Each function takes validated data, keeps the invariants (version steps by one, history row per
change, derived stage), flushes, and never commits: the caller commits once at its boundary.
"""

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, inspect

from models.accounts import Device, User
from models.base import db, utcnow
from models.care import Assessment, Consent, Service
from models.changes import allocate_seq
from models.children import Child, case_code_for
from models.errors import FieldErrors, Problem, RecordDeidentified, RecordDeleted
from models.followups import Alert, Followup, outcome_problems
from models.history import RecordHistory
from models.lifecycle import INITIAL_STAGE, StageTransition, check_transition
from models.search import SEARCHED_FIELDS, insert_tokens, mark_for_reindex

ENTITIES = {
    "child": Child,
    "consent": Consent,
    "stage_transition": StageTransition,
    "assessment": Assessment,
    "service": Service,
    "followup": Followup,
    "alert": Alert,
}
ENTITY_OF = {model: name for name, model in ENTITIES.items()}


@dataclass(frozen=True)
class Actor:
    """Who is writing and through which door."""

    user: User | None
    source: str  # api, web, device, system
    device: Device | None = None

    @property
    def role(self) -> str:
        return self.user.role if self.user else "system"


def json_value(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _history_values(entity: str, record_id, version: int, child_id, fields: dict, actor: Actor) -> dict:
    return {
        "entity": entity,
        "record_id": record_id,
        "version": version,
        "child_id": child_id,
        "fields": sorted(fields),
        "values": {k: json_value(v) for k, v in fields.items()},
        "actor_id": actor.user.id if actor.user else None,
        "device_id": actor.device.id if actor.device else None,
        "source": actor.source,
    }


def _history(record, fields: dict, actor: Actor) -> None:
    child_id = record.id if isinstance(record, Child) else getattr(record, "child_id", None)
    db.session.add(RecordHistory(**_history_values(ENTITY_OF[type(record)], record.id, record.version, child_id,
                                                   fields, actor)))


def _column_values(record) -> dict:
    return {attr.key: getattr(record, attr.key) for attr in inspect(type(record)).column_attrs}


def _check_outcome(data: dict) -> None:
    errors = outcome_problems(data)
    if errors:
        raise FieldErrors(errors)


def _resolve_caseworker(fields: dict) -> dict:
    """Turn the API's ``caseworker`` username into ``caseworker_id``."""
    if "caseworker" not in fields:
        return fields
    fields = dict(fields)
    username = fields.pop("caseworker")
    if username is None:
        fields["caseworker_id"] = None
        return fields
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active or user.role not in ("caseworker", "manager"):
        raise FieldErrors({"caseworker": [f"No active caseworker or manager named '{username}'."]})
    fields["caseworker_id"] = user.id
    return fields


def _derive_child_fields(fields: dict) -> dict:
    if fields.get("date_of_birth"):
        fields = {**fields, "birth_year": fields["date_of_birth"].year}
    return fields


@dataclass
class NewRecord:
    """A create checked and worked out but not written yet: the rows ``create_many`` inserts. The same
    values ``create_child`` and ``create_record`` give the ORM, so both ways write the same rows."""

    model: type
    values: dict  # the record's columns, version 1
    history: dict  # the fields its version-1 history row names
    first_stage: dict | None = None  # a new child's first stage transition


def _new_child(fields: dict, actor: Actor, record_id, recorded_at, today) -> NewRecord:
    fields = _derive_child_fields(_resolve_caseworker(fields))
    child_id = record_id or uuid.uuid4()
    identified_on = fields.get("identified_on") or today or utcnow().date()
    values = {"id": child_id, "case_code": case_code_for(child_id), "stage": INITIAL_STAGE,
              "stage_since": identified_on, "version": 1, "recorded_at": recorded_at,
              **{**fields, "identified_on": identified_on}}
    # The first transition, so the timeline starts where the case starts.
    first_stage = {"child_id": child_id, "from_stage": None, "to_stage": INITIAL_STAGE, "occurred_on": identified_on,
                   "actor_id": actor.user.id if actor.user else None, "version": 1}
    return NewRecord(Child, values, {**fields, "identified_on": identified_on, "stage": INITIAL_STAGE}, first_stage)


def _new_record(entity: str, fields: dict, record_id, recorded_at) -> NewRecord:
    model = ENTITIES[entity]
    values = {"id": record_id or uuid.uuid4(), "version": 1, "recorded_at": recorded_at, **fields}
    return NewRecord(model, values, fields)


def create_child(fields: dict, actor: Actor, *, record_id: uuid.UUID | None = None,
                 recorded_at: datetime | None = None, today: date | None = None, flush: bool = True,
                 code_checked: bool = False) -> Child:
    """``code_checked``: the caller already looked for the case code (sync does it for a whole batch)."""
    new = _new_child(fields, actor, record_id, recorded_at, today)
    code = new.values["case_code"]
    if not code_checked and db.session.execute(db.select(Child.id).where(Child.case_code == code)).first():
        raise Problem("id_conflict", f"The case code {code} derived from this id is taken; create the child "
                      "with a new id.", {"id": str(new.values["id"])})
    child = Child(**new.values)
    db.session.add(child)
    _history(child, new.history, actor)
    db.session.add(StageTransition(**new.first_stage))
    mark_for_reindex(child)
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return child


def create_record(entity: str, fields: dict, actor: Actor, *, record_id: uuid.UUID | None = None,
                  recorded_at: datetime | None = None, flush: bool = True):
    """Create a consent, assessment, service, follow-up or alert under an existing child."""
    new = _new_record(entity, fields, record_id, recorded_at)
    if new.model is not Alert:
        check_record_create(entity, fields, db.session.get(Child, new.values.get("child_id")))
    record = new.model(**new.values)
    db.session.add(record)
    _history(record, new.history, actor)
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return record


def check_record_create(entity: str, fields: dict, child: Child | None) -> None:
    """Raise what ``create_record`` refuses, before anything is written (sync decides, then writes)."""
    if ENTITIES[entity] is Followup:
        _check_outcome(fields)
    if child is not None:
        _refuse_deidentified(child)  # no new notes under a case whose identity retention erased


def prepare_create(entity: str, fields: dict, actor: Actor, *, record_id: uuid.UUID,
                   recorded_at: datetime | None = None, today: date | None = None) -> NewRecord:
    """What ``create_child`` / ``create_record`` would write, checked the same way (and raising the same
    errors), for ``create_many``. The case code must have been checked by the caller."""
    if entity == "child":
        return _new_child(fields, actor, record_id, recorded_at, today)
    check_record_create(entity, fields, None)
    return _new_record(entity, fields, record_id, recorded_at)


@functools.cache
def _column_names(model) -> dict:
    return {attr.key: attr.columns[0].name for attr in inspect(model).column_attrs}


def create_many(news: list[NewRecord], actor: Actor) -> None:
    """Write prepared creates with one executemany per table (a sync batch of new records).

    The rows are those the ORM path writes: each record at version 1, its version-1 history row, a
    child's first stage transition. ``seq`` is stamped here, in list order (a child, then its first
    transition), from ``allocate_seq``: the before_flush hook only sees ORM objects. Flushes, never commits.
    """
    if not news:
        return
    session = db.session
    session.flush()  # pending ORM writes take their seq first, as they would in one flush
    synced, history, searched = [], [], {}
    for new in news:
        synced.append((new.model, new.values))
        if new.first_stage is not None:
            synced.append((StageTransition, new.first_stage))
        record_id = new.values["id"]
        child_id = record_id if new.model is Child else new.values.get("child_id")
        history.append(_history_values(ENTITY_OF[new.model], record_id, 1, child_id, new.history, actor))
        if new.model is Child:
            searched[record_id] = new.values
    first = allocate_seq(session, len(synced))
    # One executemany per table and set of columns (a row leaves out the columns it does not set, so
    # their defaults apply as in the ORM); children first, their records reference them.
    groups: dict = {}
    for offset, (model, values) in enumerate(synced):
        names = _column_names(model)
        row = {names[k]: v for k, v in values.items()}
        row["seq"] = first + offset
        groups.setdefault((model is not Child, model.__tablename__, frozenset(row)), (model, []))[1].append(row)
    connection = session.connection()
    for key in sorted(groups, key=lambda k: k[:2]):
        model, rows = groups[key]
        connection.execute(insert(model.__table__), rows)
    connection.execute(insert(RecordHistory.__table__), history)
    insert_tokens(searched, connection)  # new children: one executemany, nothing to delete


def check_update(record, fields: dict) -> dict:
    """Raise what ``update_record`` refuses, before anything is written; return the fields that change."""
    if record.deleted_at is not None:
        raise RecordDeleted(f"This {ENTITY_OF[type(record)]} was deleted; it can no longer be changed.")
    _refuse_deidentified(record)
    if isinstance(record, Child):
        fields = _derive_child_fields(_resolve_caseworker(fields))
    changed = {k: v for k, v in fields.items() if getattr(record, k) != v}
    if changed and isinstance(record, Followup):
        _check_outcome({**_column_values(record), **changed})
    return changed


def update_record(record, fields: dict, actor: Actor, *, recorded_at: datetime | None = None,
                  flush: bool = True) -> list[str]:
    """Apply the fields that differ; step the version once. Returns the names that changed."""
    changed = check_update(record, fields)
    if not changed:
        return []
    for key, value in changed.items():
        setattr(record, key, value)
    record.version += 1
    if recorded_at is not None:
        record.recorded_at = recorded_at
    _history(record, changed, actor)
    if isinstance(record, Child) and not changed.keys().isdisjoint(SEARCHED_FIELDS):
        mark_for_reindex(record)
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return sorted(changed)


def _refuse_deidentified(record) -> None:
    if isinstance(record, Child) and record.deidentified_at is not None:
        raise RecordDeidentified("This case was de-identified under the retention policy; it can no longer "
                                 "be changed or reopened. Register a returning child as a new case.")


def delete_record(record, actor: Actor) -> None:
    if record.deleted_at is not None:
        raise RecordDeleted(f"This {ENTITY_OF[type(record)]} is already deleted.")
    record.deleted_at = utcnow()
    record.version += 1
    _history(record, {"deleted_at": record.deleted_at}, actor)
    db.session.flush()


def follow_up_since(child: Child) -> date | None:
    """When the child was first reunified: the start of follow-up for the closure minimum."""
    return db.session.execute(
        db.select(func.min(StageTransition.occurred_on))
        .where(StageTransition.child_id == child.id, StageTransition.to_stage == "reunified")
    ).scalar_one()


def check_move(child: Child, to_stage: str, actor: Actor, *, occurred_on: date, reason: str | None = None,
               closure_reason: str | None = None, today: date | None = None, min_follow_up_days: int = 365) -> None:
    """Raise what ``transition`` refuses, before anything is written (sync decides, then writes)."""
    if child.deleted_at is not None:
        raise RecordDeleted("This child was deleted; it can no longer change stage.")
    _refuse_deidentified(child)
    check_transition(
        child, to_stage, occurred_on=occurred_on, reason=reason, closure_reason=closure_reason,
        actor_role=actor.role, today=today or utcnow().date(),
        follow_up_since=follow_up_since(child) if to_stage == "closure_pending" else None,
        min_follow_up_days=min_follow_up_days,
    )
    from models.tracing import reunification_problem  # issue 14: tracing -> reunified needs a verified family

    problem = reunification_problem(child, to_stage, actor.role, reason)
    if problem is not None:
        raise problem


def transition(child: Child, to_stage: str, actor: Actor, *, occurred_on: date, reason: str | None = None,
               closure_reason: str | None = None, details: dict | None = None,
               record_id: uuid.UUID | None = None, recorded_at: datetime | None = None,
               today: date | None = None, min_follow_up_days: int = 365, flush: bool = True) -> StageTransition:
    """Validate and record one stage transition, and derive the child's stage from it."""
    check_move(child, to_stage, actor, occurred_on=occurred_on, reason=reason, closure_reason=closure_reason,
               today=today, min_follow_up_days=min_follow_up_days)
    record = StageTransition(
        id=record_id or uuid.uuid4(), version=1, child_id=child.id, from_stage=child.stage,
        to_stage=to_stage, occurred_on=occurred_on, reason=reason, closure_reason=closure_reason,
        details=details, actor_id=actor.user.id if actor.user else None, recorded_at=recorded_at,
    )
    db.session.add(record)
    _history(record, {"from_stage": child.stage, "to_stage": to_stage, "occurred_on": occurred_on}, actor)
    update_record(child, {"stage": to_stage, "stage_since": occurred_on}, actor, flush=flush)
    return record
