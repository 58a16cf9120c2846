"""Referrals (issue 13): a child referred for a service to a partner agency or an outside provider,
with a lifecycle and the date and actor of every step.

    proposed → sent → accepted | declined;  accepted → completed | closed_without_service

A new referral needs the child's ``referral`` consent, or a manager's override (models.consent_gates).
Every step is a row of ``referral_step``; the referral keeps its current status and when it was sent
(the overdue-response alert reads that). Reason and outside provider are personal: encrypted."""

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.agencies import Agency
from models.audit import audit
from models.base import SyncedRecord, UTCDateTime, db, utcnow
from models.care import child_seq_index
from models.consent_gates import OVERRIDDEN, require_consent
from models.crypto import EncryptedText
from models.errors import FieldErrors, InvalidTransition, Problem, RecordDeidentified
from models.records import register_entity
from models.sensitivity import aggregate, personal
from models.vocab import SERVICE_TYPES

REFERRAL_STATUSES = ("proposed", "sent", "accepted", "declined", "completed", "closed_without_service")
NEXT_STEPS = {
    "proposed": ("sent",),
    "sent": ("accepted", "declined"),
    "accepted": ("completed", "closed_without_service"),
    "declined": (),
    "completed": (),
    "closed_without_service": (),
}
OPEN_STATUSES = ("proposed", "sent", "accepted")
LIMITS = {"reason": 1000, "provider_name": 120}


class Referral(SyncedRecord, db.Model):
    """Synced to the devices of the child's caseworker (issue 13): ``version``, ``seq`` and history as
    every synced record; the web and the API step ``version`` on each step too."""

    __tablename__ = "referral"
    # A pull walks each child in scope's referrals after its cursor (sync.pull): with only a child_id
    # index and one on seq, PostgreSQL scanned every referral after the cursor once per child.
    __table_args__ = (child_seq_index("referral"),)

    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), info=aggregate())
    service_type: Mapped[str] = mapped_column(String(24), info=aggregate())
    agency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agency.id"), info=aggregate())
    provider_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    reason: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    status: Mapped[str] = mapped_column(String(24), default="proposed", index=True, info=aggregate())
    sent_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    consent_overridden: Mapped[bool] = mapped_column(default=False, info=aggregate())
    # A manager's reason may say more about the family than the case needs: never sent to devices.
    override_reason: Mapped[str | None] = mapped_column(EncryptedText, info=personal(dumped=False))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())

    agency: Mapped[Agency | None] = relationship(lazy="joined")
    steps: Mapped[list["ReferralStep"]] = relationship(order_by="ReferralStep.at", lazy="selectin")


class ReferralStep(db.Model):
    """One step of a referral: the status it moved to, on which day, by whom."""

    __tablename__ = "referral_step"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral.id"), index=True, info=aggregate())
    status: Mapped[str] = mapped_column(String(24), info=aggregate())
    occurred_on: Mapped[date] = mapped_column(Date, info=aggregate())
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())


def _as_uuid(value):
    """An id from a form or the API; an unreadable one stands for no agency (uuid4 ids are never 0)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.UUID(int=0)


def _referral_problems(data: dict) -> dict[str, list[str]]:
    problems = {}
    if data.get("service_type") not in SERVICE_TYPES:
        problems["service_type"] = [f"Choose one of: {', '.join(SERVICE_TYPES)}."]
    agency_id, provider = data.get("agency_id"), (data.get("provider_name") or "").strip()
    if agency_id and provider:
        problems["provider_name"] = ["Name either a partner agency or an outside provider, not both."]
    elif not agency_id and not provider:
        problems["agency_id"] = ["Choose the receiving agency, or name an outside provider."]
    elif agency_id:
        agency = db.session.get(Agency, _as_uuid(agency_id))
        if agency is None or not agency.active:
            problems["agency_id"] = ["No active agency with this id."]
    for field, most in LIMITS.items():
        value = data.get(field)
        if value and len(value) > most:
            problems[field] = [f"At most {most} characters (got {len(value)})."]
    return problems


def propose_referral(child, data: dict, user, *, today: date) -> Referral:
    """A new referral, ``proposed``, after the consent gate. ``data``: service_type, agency_id or
    provider_name, reason, override_reason (a manager's, when the consent is missing). Flushes."""
    if child.deidentified_at is not None:
        raise RecordDeidentified("This case was de-identified: it can no longer be referred.")
    problems = _referral_problems(data)
    if problems:
        raise FieldErrors(problems)
    override = data.get("override_reason")
    referral_id = uuid.uuid4()
    gate = require_consent(child, "referral", user, override, on=today, action="referral", target_id=referral_id)
    referral = Referral(
        id=referral_id, child_id=child.id, service_type=data["service_type"],
        agency_id=_as_uuid(data["agency_id"]) if data.get("agency_id") else None,
        provider_name=(data.get("provider_name") or "").strip() or None, reason=data.get("reason") or None,
        status="proposed", consent_overridden=gate == OVERRIDDEN,
        override_reason=override.strip() if gate == OVERRIDDEN else None, created_by_id=user.id,
    )
    db.session.add(referral)
    db.session.flush()
    db.session.add(ReferralStep(referral_id=referral.id, status="proposed", occurred_on=today, actor_id=user.id))
    audit("referral.create", actor=user, child_id=child.id, target=referral.id,
          service_type=referral.service_type, consent="override" if referral.consent_overridden else "given")
    db.session.flush()
    return referral


def check_step(referral: Referral, to_status: str) -> None:
    """Refuse a step the referral's status does not allow, naming the allowed ones."""
    allowed = NEXT_STEPS.get(referral.status, ())
    if to_status not in allowed:
        choices = ", ".join(allowed) if allowed else "none (the referral is finished)"
        raise InvalidTransition(f"A referral that is {referral.status.replace('_', ' ')} cannot become "
                                f"{to_status.replace('_', ' ')}. Allowed: {choices}.",
                                {"status": referral.status, "allowed": list(allowed)})


def advance_referral(referral: Referral, to_status: str, user, *, today: date) -> Referral:
    """Move a referral one step; refuses a step its status does not allow, naming the allowed ones.
    Sending re-checks the consent: one withdrawn since the proposal stops the referral going out,
    unless the proposal was a manager's override."""
    check_step(referral, to_status)
    if to_status == "sent" and not referral.consent_overridden:
        from models.children import Child

        require_consent(db.session.get(Child, referral.child_id), "referral", user, None, on=today)
    referral.status = to_status
    referral.version += 1
    if to_status == "sent":
        referral.sent_on = today
    db.session.add(ReferralStep(referral_id=referral.id, status=to_status, occurred_on=today, actor_id=user.id))
    if to_status in ("accepted", "declined"):
        from models.alerting import resolve_stale

        db.session.flush()
        resolve_stale(today, {referral.child_id})  # an answer settles the overdue-response alert
    audit("referral.step", actor=user, child_id=referral.child_id, target=referral.id, status=to_status)
    db.session.flush()
    return referral


def referral_body(referral: Referral, *, show_override: bool) -> dict:
    """What the API shows of a referral; the reason for a consent override only with ``show_override``
    (managers: it is their decision, and it may say more about the family than the case needs)."""
    return {
        "id": str(referral.id), "child_id": str(referral.child_id), "service_type": referral.service_type,
        "agency_id": str(referral.agency_id) if referral.agency_id else None,
        "agency": referral.agency.name if referral.agency else None, "provider_name": referral.provider_name,
        "reason": referral.reason, "status": referral.status,
        "sent_on": referral.sent_on.isoformat() if referral.sent_on else None,
        "allowed_next": list(NEXT_STEPS[referral.status]), "consent_overridden": referral.consent_overridden,
        "override_reason": referral.override_reason if show_override else None,
        "steps": [{"status": s.status, "occurred_on": s.occurred_on.isoformat(), "at": s.at.isoformat(),
                   "actor_id": str(s.actor_id) if s.actor_id else None} for s in referral.steps],
        "created_at": referral.created_at.isoformat(),
    }


def referral_form(referral: Referral, child, user, *, today: date) -> dict:
    """What the printable form for an outside provider holds: only what the ``referral`` consent lets
    go to someone outside the system. The case code and first name to recognise the child, sex and age
    band, the service and the reason, and who to call back: the referring worker and their agency.
    Never the family name, aliases, village, family contacts or anything restricted: a consent records
    a purpose, not which contact details may go, so none do; the provider calls the caseworker.
    Refused for a referral to a partner agency (it sees the referral in the system), and once the
    consent is no longer in force, unless the referral was proposed on a manager's override. Audited."""
    from models.accounts import User
    from models.age_bands import age_band_of

    if referral.agency_id is not None:
        raise Problem("not_outside_provider", "This referral goes to a partner agency, which sees it in the "
                      "system: a printed form is only for a provider outside the system.")
    if referral.status in ("declined", "completed", "closed_without_service"):
        raise Problem("referral_finished", f"This referral is {referral.status.replace('_', ' ')}: "
                      "there is nothing to send any more.")
    if not referral.consent_overridden:
        require_consent(child, "referral", user, None, on=today)
    referrer = db.session.get(User, referral.created_by_id) if referral.created_by_id else None
    agency = db.session.get(Agency, child.agency_id) if child.agency_id else None
    audit("referral.form_printed", actor=user, child_id=child.id, target=referral.id)
    return {
        "case_code": child.case_code, "given_name": child.given_name, "sex": child.sex,
        "age_band": age_band_of(child.birth_year, today.year),  # a key: the page says it in its language
        "service_type": referral.service_type, "reason": referral.reason, "provider_name": referral.provider_name,
        "proposed_on": referral.steps[0].occurred_on if referral.steps else None, "sent_on": referral.sent_on,
        "referred_by": (referrer.display_name or referrer.username) if referrer else None,
        "referrer_email": referrer.email if referrer else None,
        "agency": agency.name if agency else None, "agency_contact": agency.contact if agency else None,
        "printed_on": today,
    }


register_entity("referral", Referral)
