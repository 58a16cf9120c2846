"""Creating, changing and moving records: the one path every writer (API, sync, web, CLI) takes.

Each function takes validated data, keeps the invariants (version steps by one, history row per
change, derived stage), flushes, and never commits: the caller commits once at its boundary.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, inspect

from models.accounts import Device, User
from models.base import db, utcnow
from models.care import Assessment, Consent, Service
from models.children import Child, case_code_for
from models.errors import DomainError, FieldErrors, RecordDeleted
from models.followups import Alert, Followup, outcome_problems
from models.history import RecordHistory
from models.lifecycle import INITIAL_STAGE, StageTransition, check_transition

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


def _history(record, fields: dict, actor: Actor) -> None:
    db.session.add(RecordHistory(
        entity=ENTITY_OF[type(record)],
        record_id=record.id,
        version=record.version,
        child_id=record.id if isinstance(record, Child) else getattr(record, "child_id", None),
        fields=sorted(fields),
        values={k: json_value(v) for k, v in fields.items()},
        actor_id=actor.user.id if actor.user else None,
        device_id=actor.device.id if actor.device else None,
        source=actor.source,
    ))


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


def create_child(fields: dict, actor: Actor, *, record_id: uuid.UUID | None = None,
                 recorded_at: datetime | None = None, today: date | None = None, flush: bool = True,
                 code_checked: bool = False) -> Child:
    """``code_checked``: the caller already looked for the case code (sync does it for a whole batch)."""
    fields = _derive_child_fields(_resolve_caseworker(fields))
    child_id = record_id or uuid.uuid4()
    code = case_code_for(child_id)
    if not code_checked and db.session.execute(db.select(Child.id).where(Child.case_code == code)).first():
        raise DomainError(
            f"The case code {code} derived from this id is taken; create the child with a new id.",
            {"id": str(child_id)}, code="id_conflict",
        )
    identified_on = fields.get("identified_on") or today or utcnow().date()
    child = Child(id=child_id, case_code=code, stage=INITIAL_STAGE, stage_since=identified_on,
                  version=1, recorded_at=recorded_at, **{**fields, "identified_on": identified_on})
    db.session.add(child)
    _history(child, {**fields, "identified_on": identified_on, "stage": INITIAL_STAGE}, actor)
    # The first transition, so the timeline starts where the case starts.
    db.session.add(StageTransition(
        child_id=child.id, from_stage=None, to_stage=INITIAL_STAGE, occurred_on=identified_on,
        actor_id=actor.user.id if actor.user else None, version=1,
    ))
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return child


def create_record(entity: str, fields: dict, actor: Actor, *, record_id: uuid.UUID | None = None,
                  recorded_at: datetime | None = None, flush: bool = True):
    """Create a consent, assessment, service, follow-up or alert under an existing child."""
    model = ENTITIES[entity]
    if model is Followup:
        _check_outcome(fields)
    record = model(id=record_id or uuid.uuid4(), version=1, recorded_at=recorded_at, **fields)
    db.session.add(record)
    _history(record, fields, actor)
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return record


def update_record(record, fields: dict, actor: Actor, *, recorded_at: datetime | None = None,
                  flush: bool = True) -> list[str]:
    """Apply the fields that differ; step the version once. Returns the names that changed."""
    if record.deleted_at is not None:
        raise RecordDeleted(f"This {ENTITY_OF[type(record)]} was deleted; it can no longer be changed.")
    if isinstance(record, Child):
        fields = _derive_child_fields(_resolve_caseworker(fields))
    changed = {k: v for k, v in fields.items() if getattr(record, k) != v}
    if not changed:
        return []
    if isinstance(record, Followup):
        _check_outcome({**_column_values(record), **changed})
    for key, value in changed.items():
        setattr(record, key, value)
    record.version += 1
    if recorded_at is not None:
        record.recorded_at = recorded_at
    _history(record, changed, actor)
    if flush:  # a sync batch flushes once for many records
        db.session.flush()
    return sorted(changed)


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


def transition(child: Child, to_stage: str, actor: Actor, *, occurred_on: date, reason: str | None = None,
               closure_reason: str | None = None, details: dict | None = None,
               record_id: uuid.UUID | None = None, recorded_at: datetime | None = None,
               today: date | None = None, min_follow_up_days: int = 365, flush: bool = True) -> StageTransition:
    """Validate and record one stage transition, and derive the child's stage from it."""
    if child.deleted_at is not None:
        raise RecordDeleted("This child was deleted; it can no longer change stage.")
    check_transition(
        child, to_stage, occurred_on=occurred_on, reason=reason, closure_reason=closure_reason,
        actor_role=actor.role, today=today or utcnow().date(),
        follow_up_since=follow_up_since(child) if to_stage == "closure_pending" else None,
        min_follow_up_days=min_follow_up_days,
    )
    record = StageTransition(
        id=record_id or uuid.uuid4(), version=1, child_id=child.id, from_stage=child.stage,
        to_stage=to_stage, occurred_on=occurred_on, reason=reason, closure_reason=closure_reason,
        details=details, actor_id=actor.user.id if actor.user else None, recorded_at=recorded_at,
    )
    db.session.add(record)
    _history(record, {"from_stage": child.stage, "to_stage": to_stage, "occurred_on": occurred_on}, actor)
    update_record(child, {"stage": to_stage, "stage_since": occurred_on}, actor, flush=flush)
    return record
