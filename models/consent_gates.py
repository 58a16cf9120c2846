"""Consent that gates sharing (issue 13): an action that shares a child's case for a purpose needs a
consent for that purpose in force, or a manager's override with a reason.

One function, ``require_consent``, holds the rule for one child (referrals and transfers need
``referral``, family tracing ``tracing``); ``consent_in_force_clause`` is the same rule as SQL for a
set of children (identified reporting needs ``reporting``). Every override is a ``ConsentOverride``
row: the child's page lists them (purpose, who, when; the reason to managers only).

A consent given by a caregiver is re-sought from the young person at 18 (the ``consent_adult`` alert,
raised on 1 January of the year the child turns 18). The gate gives that year to ask: from 1 January
of the following year a caregiver's consent no longer counts, only one the young person gave."""

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, exists, or_
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import audit
from models.base import UTCDateTime, db, utcnow
from models.care import Consent
from models.crypto import EncryptedText
from models.errors import ManagerOnly, Problem
from models.sensitivity import aggregate, personal
from models.vocab import CONSENT_PURPOSES

GIVEN = "consent"
OVERRIDDEN = "override"
MAX_REASON = 500
ADULT_AGE = 18


class ConsentOverride(db.Model):
    """A manager's decision to act without the consent: for which child, purpose and action, by whom,
    when and why (the reason may name people: encrypted, shown to managers only)."""

    __tablename__ = "consent_override"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True, info=aggregate())
    purpose: Mapped[str] = mapped_column(String(16), info=aggregate())
    action: Mapped[str] = mapped_column(String(32), info=aggregate())
    target_id: Mapped[uuid.UUID | None] = mapped_column(info=aggregate())
    reason: Mapped[str | None] = mapped_column(EncryptedText, info=personal())  # None once de-identified
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())


class ConsentRequired(Problem):
    def __init__(self, purpose: str):
        super().__init__("consent_required",
                         f"This child has no '{purpose}' consent in force (none given, or it was withdrawn; "
                         "a caregiver's consent lapses once the young person is an adult). "
                         "Record the consent first, or a manager may record an override with a reason.",
                         {"purpose": purpose})


def consent_in_force_clause(child, purpose: str, on: date):
    """SQL: a live consent for ``purpose`` given on or before ``on`` and not withdrawn by then, for the
    child whose columns ``child`` holds (the ``Child`` entity or a table). A caregiver's consent counts
    only until the end of the year the child turns 18 (the birth year is what is known in clear)."""
    caregiver_still_counts = or_(child.birth_year.is_(None), child.birth_year > on.year - ADULT_AGE - 1)
    return exists().where(
        Consent.child_id == child.id, Consent.purpose == purpose, Consent.deleted_at.is_(None),
        Consent.given_on <= on, or_(Consent.withdrawn_on.is_(None), Consent.withdrawn_on > on),
        or_(Consent.given_by == "child", caregiver_still_counts),
    )


def consent_in_force(child, purpose: str, on: date) -> bool:
    from models.children import Child

    return db.session.execute(db.select(Child.id).where(
        Child.id == child.id, consent_in_force_clause(Child, purpose, on))).first() is not None


def require_consent(child, purpose: str, actor, override_reason: str | None, *, on: date,
                    action: str | None = None, target_id=None) -> str:
    """``GIVEN`` when a consent is in force; ``OVERRIDDEN`` when a manager gave a reason (a
    ``ConsentOverride`` row for ``action`` on ``target_id``, audited as ``consent.override``); otherwise
    raises ``ConsentRequired``. An override from anyone but a manager is refused with ``ManagerOnly``.
    ``actor`` is the acting ``User``; ``action`` defaults to the purpose."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if consent_in_force(child, purpose, on):
        return GIVEN
    reason = (override_reason or "").strip()
    if not reason:
        raise ConsentRequired(purpose)
    if getattr(actor, "role", None) != "manager":
        raise ManagerOnly("Only a manager may override a missing consent.")
    if len(reason) > MAX_REASON:
        raise Problem("validation_error", "The override reason is too long.",
                      {"fields": {"override_reason": [f"At most {MAX_REASON} characters (got {len(reason)})."]}})
    db.session.add(ConsentOverride(child_id=child.id, purpose=purpose, action=action or purpose,
                                   target_id=target_id, reason=reason, actor_id=actor.id))
    # The reason itself may name people: it is kept encrypted, never in the audit log.
    audit("consent.override", actor=actor, child_id=child.id, target=target_id, purpose=purpose,
          gated=action or purpose)
    return OVERRIDDEN


def overrides_of(child_id) -> list[ConsentOverride]:
    """The child's consent overrides, newest first (the child's page)."""
    return db.session.execute(db.select(ConsentOverride).where(ConsentOverride.child_id == child_id)
                              .order_by(ConsentOverride.at.desc())).scalars().all()
