"""Sync conflicts for people (DESIGN §5): list them, show them, resolve them field by field.

A resolution writes a new version of the record through ``models.records.update_record``, so it
reaches every device on its next pull, and clears the child's review flag once no conflict of the
child is left open. Callers audit and commit.
"""

import uuid

from marshmallow import ValidationError

from models import audit
from models.access import child_scope, sees_restricted
from models.base import db, utcnow
from models.children import Child
from models.errors import FieldErrors, Problem, RecordDeleted
from models.field_messages import UNKNOWN
from models.records import ENTITIES, Actor, json_value, update_record
from models.schemas import FIELD_SCHEMAS
from models.sensitivity import RESTRICTED, fields_of
from models.syncstate import Conflict

SIDES = ("device", "server")


def restricted_fields(conflict: Conflict) -> set[str]:
    """The conflict's fields of the restricted class (DESIGN §3): only managers see or choose them."""
    return set(conflict.fields) & set(fields_of(ENTITIES[conflict.entity], RESTRICTED))


def fields_hidden_from(user, conflict: Conflict) -> set[str]:
    """The fields whose values ``user`` may not see. A manager sees them all, and being shown a
    restricted value is a restricted read, audited as on the child's profile (the caller commits)."""
    restricted = restricted_fields(conflict)
    if not sees_restricted(user):
        return restricted
    if restricted:
        audit("child.restricted_read", actor=user, child_id=conflict.child_id, target=conflict.id)
    return set()


def conflicts_query(user, *, child_id: uuid.UUID | None = None, status: str | None = "open"):
    """Conflicts of the children ``user`` may see, newest first."""
    stmt = (db.select(Conflict).join(Child, Child.id == Conflict.child_id)
            .where(child_scope(user), Child.deleted_at.is_(None)).order_by(Conflict.created_at.desc()))
    if status:
        stmt = stmt.where(Conflict.status == status)
    if child_id is not None:
        stmt = stmt.where(Conflict.child_id == child_id)
    return stmt


def list_conflicts(user, *, child_id=None, status="open") -> list[Conflict]:
    return list(db.session.execute(conflicts_query(user, child_id=child_id, status=status)).scalars())


def get_conflict(user, conflict_id) -> Conflict | None:
    """The conflict if ``user`` may see its child; None otherwise (no hint that it exists)."""
    return db.session.execute(
        conflicts_query(user, status=None).where(Conflict.id == conflict_id)
    ).scalar_one_or_none()


def _chosen_values(conflict: Conflict, choices: dict) -> tuple[dict, dict]:
    """Validate the choices; return (fields to write, resolution to store)."""
    errors, raw, resolution = {}, {}, {}
    for name in conflict.fields:
        choice = choices.get(name)
        if choice == "device":
            raw[name] = conflict.device_values.get(name)
            resolution[name] = {"choice": "device", "value": raw[name]}
        elif choice == "server":
            resolution[name] = {"choice": "server", "value": conflict.server_values.get(name)}
        elif isinstance(choice, dict) and set(choice) == {"value"}:
            raw[name] = choice["value"]
            resolution[name] = {"choice": "value", "value": choice["value"]}
        else:
            errors[name] = ['Choose "device", "server" or {"value": ...}.']
    extra = len(set(choices) - set(conflict.fields))
    if extra:  # counted, not named: a key the client chose is never repeated back (models.field_messages)
        errors[UNKNOWN] = [f"{extra} of the fields sent {'is' if extra == 1 else 'are'} not a field of this conflict."]
    if errors:
        raise FieldErrors(errors)
    try:
        # Values come back through the entity's schema: typed, and checked as any edit would be.
        loaded = FIELD_SCHEMAS[conflict.entity](partial=True).load(raw) if raw else {}
    except ValidationError as exc:
        raise FieldErrors(exc.normalized_messages()) from None
    for name in raw:
        resolution[name]["value"] = json_value(loaded.get(name))
    return loaded, resolution


def resolve_conflict(conflict: Conflict, choices: dict, actor: Actor):
    """Keep, per conflicting field, the device's value, the server's, or a new one. Flushes."""
    if conflict.status != "open":
        raise Problem("already_resolved", "This conflict was already resolved.")
    model = ENTITIES[conflict.entity]
    record = db.session.get(model, conflict.record_id)
    if record is None or record.deleted_at is not None:
        raise RecordDeleted(f"This {conflict.entity} was deleted; there is nothing left to resolve.")
    fields, resolution = _chosen_values(conflict, choices)
    conflict.status = "resolved"
    conflict.resolved_at = utcnow()
    conflict.resolved_by_id = actor.user.id if actor.user else None
    conflict.resolution = resolution
    db.session.flush()
    child = db.session.get(Child, conflict.child_id)
    others_open = db.session.execute(
        db.select(Conflict.id).where(Conflict.child_id == child.id, Conflict.status == "open").limit(1)
    ).first() is not None
    clear = {} if others_open else {"needs_review": False}
    if record is child:
        update_record(child, {**fields, **clear}, actor)
    else:
        update_record(record, fields, actor)
        if clear:
            update_record(child, clear, actor)
    return record
