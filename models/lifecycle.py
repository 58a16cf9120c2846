"""The case lifecycle of DESIGN §1: phases, stages, allowed transitions, and the one function that
moves a child. The child's current stage is derived from the append-only transitions."""

import uuid
from datetime import date

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db
from models.care import ChildRecord, child_seq_index
from models.crypto import EncryptedJSON, EncryptedText
from models.errors import FieldErrors, InvalidTransition, ManagerOnly
from models.sensitivity import aggregate, personal
from models.vocab import CLOSURE_REASONS

PHASES = {
    "demobilisation": ("identified", "reception", "registered"),
    "trauma_support": ("assessed", "tracing"),
    "reintegration": ("reunified", "follow_up", "closure_pending", "closed"),
}
STAGES = (*(s for stages in PHASES.values() for s in stages), "missing")
PHASE_OF = {stage: phase for phase, stages in PHASES.items() for stage in stages}
INITIAL_STAGE = "identified"
OPEN_STAGES = tuple(s for s in STAGES if s not in ("closed", "missing"))

# Allowed moves, in the order a person would consider them. `missing` is reachable from any open stage.
TRANSITIONS = {
    "identified": ("reception", "registered"),
    "reception": ("registered",),
    "registered": ("assessed",),
    "assessed": ("tracing", "reunified"),
    "tracing": ("reunified",),
    "reunified": ("follow_up",),
    "follow_up": ("closure_pending", "assessed"),
    "closure_pending": ("closed", "follow_up"),
    "missing": ("assessed", "closed"),
    "closed": ("assessed",),
}
MANAGER_ONLY = {("closure_pending", "closed"), ("missing", "closed"), ("closed", "assessed")}


def allowed_targets(stage: str) -> tuple[str, ...]:
    targets = TRANSITIONS.get(stage, ())
    return (*targets, "missing") if stage in OPEN_STAGES else targets


def phase_of(stage: str) -> str | None:
    return PHASE_OF.get(stage)


class StageTransition(ChildRecord, db.Model):
    """Append-only: a device or a person creates one, nobody edits it."""

    __tablename__ = "stage_transition"

    from_stage: Mapped[str | None] = mapped_column(String(16), info=aggregate())
    to_stage: Mapped[str] = mapped_column(String(16), info=aggregate())
    occurred_on: Mapped[date] = mapped_column(Date, info=aggregate())
    reason: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    closure_reason: Mapped[str | None] = mapped_column(String(16), info=aggregate())
    # Stage-specific detail (centre, caregiver, care arrangement, date last seen …).
    details: Mapped[dict | None] = mapped_column(EncryptedJSON, info=personal())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())

    # Reports count the children who entered a stage in a period (registered, reunified, closed …).
    __table_args__ = (Index("ix_stage_transition_to_stage_occurred_on", "to_stage", "occurred_on"),
                      child_seq_index("stage_transition"))


def check_transition(child, to_stage: str, *, occurred_on: date, reason: str | None,
                     closure_reason: str | None, actor_role: str, today: date,
                     follow_up_since: date | None, min_follow_up_days: int) -> None:
    """Raise unless ``child`` may move to ``to_stage`` now, by this role, with these facts."""
    allowed = allowed_targets(child.stage)
    if to_stage not in allowed:
        raise InvalidTransition(
            f"A child in stage '{child.stage}' cannot move to '{to_stage}'. "
            f"Allowed: {', '.join(allowed) or 'none'}.",
            {"from": child.stage, "to": to_stage, "allowed": list(allowed)},
        )
    if (child.stage, to_stage) in MANAGER_ONLY and actor_role != "manager":
        raise ManagerOnly(
            f"Only a manager may move a child from '{child.stage}' to '{to_stage}'.",
            {"from": child.stage, "to": to_stage},
        )
    errors: dict[str, list[str]] = {}
    if occurred_on > today:
        errors["occurred_on"] = ["Cannot be in the future."]
    elif child.stage_since and occurred_on < child.stage_since:
        errors["occurred_on"] = [f"Cannot be before the current stage began ({child.stage_since.isoformat()})."]
    if to_stage == "closed" and closure_reason not in CLOSURE_REASONS:
        errors["closure_reason"] = [f"Required to close a case; one of: {', '.join(CLOSURE_REASONS)}."]
    if to_stage == "closed" and closure_reason == "other" and not reason:
        errors["reason"] = ["Say why when the closure reason is 'other'."]
    if to_stage != "closed" and closure_reason is not None:
        errors["closure_reason"] = ["Only a move to 'closed' takes a closure reason."]
    if child.stage == "closed" and to_stage == "assessed" and not reason:
        errors["reason"] = ["Say why the case is reopened."]
    if to_stage == "missing" and not reason:
        errors["reason"] = ["Say what is known: when and where the child was last seen, and why missing."]
    if to_stage == "closure_pending" and not reason and follow_up_since:
        days = (occurred_on - follow_up_since).days
        if days < min_follow_up_days:
            errors["reason"] = [
                f"Closure proposed after {days} days of follow-up, before the minimum of "
                f"{min_follow_up_days}: give a written reason."
            ]
    if errors:
        raise FieldErrors(errors)
