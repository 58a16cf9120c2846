"""Consent that gates sharing (issue 13): an action that shares a child's case for a purpose needs a
consent for that purpose, given and not withdrawn, or a manager's override with a reason.

One function, ``require_consent``, holds the rule, so referrals now and tracing or identified
reporting later ask the same question and get the same answer."""

from datetime import date

from sqlalchemy import or_

from models.audit import audit
from models.base import db
from models.care import Consent
from models.errors import ManagerOnly, Problem
from models.vocab import CONSENT_PURPOSES

GIVEN = "consent"
OVERRIDDEN = "override"
MAX_REASON = 500


class ConsentRequired(Problem):
    def __init__(self, purpose: str):
        super().__init__("consent_required",
                         f"This child has no '{purpose}' consent in force (none given, or it was withdrawn). "
                         "Record the consent first, or a manager may record an override with a reason.",
                         {"purpose": purpose})


def consent_in_force(child_id, purpose: str, on: date) -> bool:
    """A live consent for ``purpose`` given on or before ``on`` and not withdrawn by then."""
    return db.session.execute(db.select(Consent.id).where(
        Consent.child_id == child_id, Consent.purpose == purpose, Consent.deleted_at.is_(None),
        Consent.given_on <= on, or_(Consent.withdrawn_on.is_(None), Consent.withdrawn_on > on),
    ).limit(1)).first() is not None


def require_consent(child, purpose: str, actor, override_reason: str | None, *, on: date) -> str:
    """``GIVEN`` when a consent is in force; ``OVERRIDDEN`` when a manager gave a reason (audited as
    ``consent.override``); otherwise raises ``ConsentRequired``. An override from anyone but a manager
    is refused with ``ManagerOnly``. ``actor`` is the acting ``User``."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if consent_in_force(child.id, purpose, on):
        return GIVEN
    reason = (override_reason or "").strip()
    if not reason:
        raise ConsentRequired(purpose)
    if getattr(actor, "role", None) != "manager":
        raise ManagerOnly("Only a manager may override a missing consent.")
    if len(reason) > MAX_REASON:
        raise Problem("validation_error", "The override reason is too long.",
                      {"fields": {"override_reason": [f"At most {MAX_REASON} characters (got {len(reason)})."]}})
    # The reason itself may name people: it is kept encrypted on the referral, never in the audit log.
    audit("consent.override", actor=actor, child_id=child.id, purpose=purpose)
    return OVERRIDDEN
