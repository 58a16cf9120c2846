"""Creating, changing and moving records: the one path of every writer (sync, API, web, CLI, scheduler).

``check_*`` raise a ``Problem`` for what a change may not do, before anything is changed; ``add_*``,
``change_record`` and ``remove_record`` decide the change in memory on a ``ChangeSet``, which writes it
(models.change_set). A sync batch decides hundreds on one; ``create_child``, ``create_record``,
``update_record``, ``delete_record`` and ``transition`` check, decide and write one. None commits.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, inspect

from models.accounts import Device, User
from models.base import db, utcnow
from models.care import Assessment, Consent, Service
from models.change_set import ChangeSet, new, time_ordered_id, written
from models.children import Child, case_code_for
from models.errors import FieldErrors, Problem, RecordDeidentified, RecordDeleted
from models.followups import Alert, Followup, outcome_problems
from models.lifecycle import INITIAL_STAGE, StageTransition, check_transition
from models.search import SEARCHED_FIELDS

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


def register_entity(name: str, model) -> None:
    """Add a synced entity defined in a module this one cannot import (models.referrals and
    models.tracing import it); importing ``models`` registers them all."""
    ENTITIES[name] = model
    ENTITY_OF[model] = name


@dataclass(frozen=True)
class Actor:
    """Who is writing and through which door."""

    user: User | None
    source: str  # api, web, device, system
    device: Device | None = None

    @property
    def role(self) -> str:
        return self.user.role if self.user else "system"


@dataclass(frozen=True)
class Move:
    """A stage transition asked for: where to, when, and what the person said about it."""

    to_stage: str
    occurred_on: date
    reason: str | None = None
    closure_reason: str | None = None
    details: dict | None = None


def json_value(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _history(changes: ChangeSet, record, fields: dict, actor: Actor) -> None:
    """The history row of the record's current version, naming the fields that version set."""
    changes.add_history({
        "entity": ENTITY_OF[type(record)],
        "record_id": record.id,
        "version": record.version,
        "child_id": record.id if isinstance(record, Child) else getattr(record, "child_id", None),
        "fields": sorted(fields),
        "values": {k: json_value(v) for k, v in fields.items()},
        "actor_id": actor.user.id if actor.user else None,
        "device_id": actor.device.id if actor.device else None,
        "source": actor.source,
        "at": changes.now,
    })


def _column_values(record) -> dict:
    return {attr.key: getattr(record, attr.key) for attr in inspect(type(record)).column_attrs}


def _check_outcome(data: dict) -> None:
    if errors := outcome_problems(data):
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


def _holder(caseworker_id, actor: Actor) -> User | None:
    """The caseworker a child is given to: on a device and often on the web, the writer themselves."""
    if caseworker_id is None:
        return None
    if actor.user is not None and actor.user.id == caseworker_id:
        return actor.user
    return db.session.get(User, caseworker_id)


def _check_caseload(holder: User | None, agency_id) -> None:
    from models.access import caseload_problem

    problem = caseload_problem(holder, agency_id)
    if problem:
        raise FieldErrors({"caseworker": [problem]})


def _derive_child_fields(fields: dict) -> dict:
    if fields.get("date_of_birth"):
        fields = {**fields, "birth_year": fields["date_of_birth"].year}
    return fields


def _refuse_deidentified(record) -> None:
    if isinstance(record, Child) and record.deidentified_at is not None:
        raise RecordDeidentified("This case was de-identified under the retention policy; it can no longer "
                                 "be changed or reopened. Register a returning child as a new case.")


# The checks: each raises what its change may not do, before anything is changed.

def check_case_code(child_id: uuid.UUID, taken: bool) -> None:
    if taken:
        raise Problem("id_conflict", f"The case code {case_code_for(child_id)} derived from this id is taken; "
                      "create the child with a new id.", {"id": str(child_id)})


def check_record_create(entity: str, fields: dict, child: Child | None) -> None:
    if ENTITIES[entity] is Followup:
        _check_outcome(fields)
    if child is not None:
        _refuse_deidentified(child)  # no new notes under a case whose identity retention erased


def check_update(record, fields: dict) -> dict:
    """Raise what ``change_record`` refuses; return the fields that change."""
    if record.deleted_at is not None:
        raise RecordDeleted(f"This {ENTITY_OF[type(record)]} was deleted; it can no longer be changed.")
    _refuse_deidentified(record)
    if isinstance(record, Child):
        fields = _derive_child_fields(_resolve_caseworker(fields))
    changed = {k: v for k, v in fields.items() if getattr(record, k) != v}
    if isinstance(record, Child) and changed.get("caseworker_id") is not None:
        _check_caseload(db.session.get(User, changed["caseworker_id"]), changed.get("agency_id", record.agency_id))
    if changed and isinstance(record, Followup):
        _check_outcome({**_column_values(record), **changed})
    return changed


def check_move(child: Child, move: Move, actor: Actor, *, today: date, min_follow_up_days: int,
               follow_up_since: date | None) -> None:
    """``follow_up_since``: when the child was first reunified, for the closure minimum."""
    if child.deleted_at is not None:
        raise RecordDeleted("This child was deleted; it can no longer change stage.")
    _refuse_deidentified(child)
    check_transition(child, move.to_stage, occurred_on=move.occurred_on, reason=move.reason,
                     closure_reason=move.closure_reason, actor_role=actor.role, today=today,
                     follow_up_since=follow_up_since, min_follow_up_days=min_follow_up_days)
    from models.tracing import reunification_problem  # issue 14; models.tracing imports this module

    problem = reunification_problem(child, move.to_stage, actor.role, move.reason)
    if problem is not None:
        raise problem


def follow_up_since(child_ids) -> dict:
    """When each child was first reunified: the start of follow-up for the closure minimum (one query)."""
    if not child_ids:
        return {}
    return dict(db.session.execute(
        db.select(StageTransition.child_id, func.min(StageTransition.occurred_on))
        .where(StageTransition.child_id.in_(set(child_ids)), StageTransition.to_stage == "reunified")
        .group_by(StageTransition.child_id)
    ).all())


# The decisions: each changes the records in memory and hands the rows to ``changes``. Checked first.

def add_child(changes: ChangeSet, fields: dict, actor: Actor, *, record_id: uuid.UUID,
              recorded_at: datetime | None = None, today: date | None = None) -> Child:
    """A new child, at version 1, with the first transition so the timeline starts where the case starts."""
    fields = _derive_child_fields(_resolve_caseworker(fields))
    identified_on = fields.get("identified_on") or today or utcnow().date()
    # A child belongs to the agency of whoever registered it, else of its caseworker (models.access).
    holder = _holder(fields.get("caseworker_id"), actor)
    agency_id = fields.pop("agency_id", None) or (actor.user.agency_id if actor.user else None) or \
        (holder.agency_id if holder is not None else None)
    _check_caseload(holder, agency_id)
    fields = {**fields, "identified_on": identified_on, **({"agency_id": agency_id} if agency_id else {})}
    child = new(Child, id=record_id, case_code=case_code_for(record_id), stage=INITIAL_STAGE,
                stage_since=identified_on, version=1, recorded_at=recorded_at, **fields)
    changes.add(child)
    _history(changes, child, {**fields, "stage": INITIAL_STAGE}, actor)
    changes.add(new(StageTransition, id=time_ordered_id(), child_id=record_id, from_stage=None, to_stage=INITIAL_STAGE,
                    occurred_on=identified_on, actor_id=actor.user.id if actor.user else None, version=1))
    changes.reindex[child.id] = child
    return child


def add_record(changes: ChangeSet, entity: str, fields: dict, actor: Actor, *, record_id: uuid.UUID,
               recorded_at: datetime | None = None):
    """A new consent, assessment, service, follow-up or alert, at version 1."""
    record = new(ENTITIES[entity], id=record_id, version=1, recorded_at=recorded_at, **fields)
    changes.add(record)
    _history(changes, record, fields, actor)
    return record


def change_record(changes: ChangeSet, record, fields: dict, actor: Actor, *,
                  recorded_at: datetime | None = None) -> list[str]:
    """Apply the fields that differ; step the version once. Returns the names that changed."""
    changed = check_update(record, fields)
    if not changed:
        return []
    if isinstance(record, Child) and "caseworker_id" in changed:
        changes.moved(record, record.caseworker_id, changed["caseworker_id"])
    changes.change(record, {**changed, "version": record.version + 1,
                            **({"recorded_at": recorded_at} if recorded_at is not None else {})})
    _history(changes, record, changed, actor)
    if isinstance(record, Child) and not changed.keys().isdisjoint(SEARCHED_FIELDS):
        changes.reindex[record.id] = record
    return sorted(changed)


def add_move(changes: ChangeSet, child: Child, move: Move, actor: Actor, *, record_id: uuid.UUID,
             recorded_at: datetime | None = None) -> StageTransition:
    """Record a checked stage transition and derive the child's stage from it."""
    record = new(
        StageTransition, id=record_id, version=1, child_id=child.id, from_stage=child.stage, to_stage=move.to_stage,
        occurred_on=move.occurred_on, reason=move.reason, closure_reason=move.closure_reason, details=move.details,
        actor_id=actor.user.id if actor.user else None, recorded_at=recorded_at,
    )
    changes.add(record)
    _history(changes, record, {"from_stage": child.stage, "to_stage": move.to_stage,
                               "occurred_on": move.occurred_on}, actor)
    change_record(changes, child, {"stage": move.to_stage, "stage_since": move.occurred_on}, actor)
    return record


def remove_record(changes: ChangeSet, record, actor: Actor) -> None:
    if record.deleted_at is not None:
        raise RecordDeleted(f"This {ENTITY_OF[type(record)]} is already deleted.")
    deleted_at = utcnow()
    changes.change(record, {"deleted_at": deleted_at, "version": record.version + 1})
    _history(changes, record, {"deleted_at": deleted_at}, actor)


# One change at a time: the API, the web pages, the CLI and the scheduler.

def create_child(fields: dict, actor: Actor, *, record_id: uuid.UUID | None = None,
                 today: date | None = None) -> Child:
    record_id = record_id or uuid.uuid4()
    code = case_code_for(record_id)
    check_case_code(record_id, db.session.execute(db.select(Child.id).where(Child.case_code == code)).first() is not None)
    with written() as changes:
        return add_child(changes, fields, actor, record_id=record_id, today=today)


def create_record(entity: str, fields: dict, actor: Actor):
    """Create a consent, assessment, service, follow-up or alert under an existing child."""
    if entity != "alert":
        check_record_create(entity, fields, db.session.get(Child, fields.get("child_id")))
    with written() as changes:
        return add_record(changes, entity, fields, actor, record_id=time_ordered_id())


def update_record(record, fields: dict, actor: Actor) -> list[str]:
    with written() as changes:
        return change_record(changes, record, fields, actor)


def delete_record(record, actor: Actor) -> None:
    with written() as changes:
        remove_record(changes, record, actor)


def transition(child: Child, to_stage: str, actor: Actor, *, occurred_on: date, today: date | None = None,
               min_follow_up_days: int = 365, **said) -> StageTransition:
    """Validate and record one stage transition. ``said``: the ``reason``, ``closure_reason`` and
    ``details`` of a ``Move``."""
    move = Move(to_stage, occurred_on, **said)
    since = follow_up_since([child.id]).get(child.id) if to_stage == "closure_pending" else None
    check_move(child, move, actor, today=today or utcnow().date(), min_follow_up_days=min_follow_up_days,
               follow_up_since=since)
    with written() as changes:
        return add_move(changes, child, move, actor, record_id=time_ordered_id())
