"""Inter-agency transfers of a case (issue 13): a manager of the sending agency proposes one (the
receiving agency, a reason), a manager of the receiving agency accepts or declines it, or the sender
withdraws it while it waits.

    proposed → accepted | declined | withdrawn

A transfer shares the case with another agency, so it passes the ``referral`` consent gate when it is
proposed and again when it is accepted (a consent withdrawn meanwhile stops it), unless the proposal
was a manager's override. On acceptance the child belongs to the receiving agency and its caseworker
is unassigned, through ``models.records`` so the change sequence carries it: the sending caseworker's
devices get ``remove`` on their next pull, and a sending agency that ``limits_reach`` no longer sees
the child (models.access). The receiving manager then assigns a caseworker. Each transfer is one row
with who acted and when; the reason is personal: encrypted."""

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.access import can_see_child
from models.agencies import Agency
from models.audit import audit
from models.base import UTCDateTime, db, utcnow
from models.children import Child
from models.consent_gates import OVERRIDDEN, require_consent
from models.crypto import EncryptedText
from models.errors import FieldErrors, InvalidTransition, Problem, RecordDeidentified
from models.referrals import _as_uuid  # one reading of an agency id from a form or the API
from models.sensitivity import aggregate, personal

TRANSFER_STATUSES = ("proposed", "accepted", "declined", "withdrawn")
# Who may take each step: the managers of the receiving or of the sending agency.
STEP_SIDE = {"accepted": "receiving", "declined": "receiving", "withdrawn": "sending"}
MAX_TEXT = 1000


class Transfer(db.Model):
    __tablename__ = "transfer"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True, info=aggregate())
    # The child's agency when proposed (None: a child registered by no agency).
    from_agency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agency.id"), info=aggregate())
    to_agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agency.id"), index=True, info=aggregate())
    status: Mapped[str] = mapped_column(String(16), default="proposed", index=True, info=aggregate())
    reason: Mapped[str | None] = mapped_column(EncryptedText, info=personal())  # None once de-identified
    consent_overridden: Mapped[bool] = mapped_column(default=False, info=aggregate())
    proposed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    proposed_on: Mapped[date] = mapped_column(Date, info=aggregate())
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())
    decided_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=aggregate())
    # Why it was declined or withdrawn (may name people: encrypted).
    decision_note: Mapped[str | None] = mapped_column(EncryptedText, info=personal())

    from_agency: Mapped[Agency | None] = relationship(foreign_keys=[from_agency_id], lazy="joined")
    to_agency: Mapped[Agency] = relationship(foreign_keys=[to_agency_id], lazy="joined")


class NotAgencyManager(Problem):
    def __init__(self, side: str):
        super().__init__("not_agency_manager",
                         f"Only a manager of the {side} agency may do this.", {"side": side})


def _manager_of(user, agency_id) -> bool:
    return user.role == "manager" and user.agency_id == agency_id


def pending_transfer(child_id) -> Transfer | None:
    return db.session.execute(db.select(Transfer).where(
        Transfer.child_id == child_id, Transfer.status == "proposed")).scalar_one_or_none()


def propose_transfer(child, data: dict, user, *, today: date) -> Transfer:
    """A new ``proposed`` transfer of ``child`` to ``data["to_agency_id"]`` with ``data["reason"]``,
    after the consent gate (``data["override_reason"]``: a manager's, when the consent is missing).
    Only a manager of the child's agency (of none, for a child of no agency) may propose. Flushes."""
    if child.deidentified_at is not None:
        raise RecordDeidentified("This case was de-identified: it can no longer be transferred.")
    if not _manager_of(user, child.agency_id):
        raise NotAgencyManager("sending")
    problems = {}
    to_agency = db.session.get(Agency, _as_uuid(data["to_agency_id"])) if data.get("to_agency_id") else None
    if to_agency is None or not to_agency.active:
        problems["to_agency_id"] = ["Choose an active receiving agency."]
    elif to_agency.id == child.agency_id:
        problems["to_agency_id"] = ["The child already belongs to this agency."]
    reason = (data.get("reason") or "").strip()
    if not reason:
        problems["reason"] = ["Say why the case is transferred."]
    elif len(reason) > MAX_TEXT:
        problems["reason"] = [f"At most {MAX_TEXT} characters (got {len(reason)})."]
    if problems:
        raise FieldErrors(problems)
    if pending_transfer(child.id) is not None:
        raise Problem("transfer_pending", "This case already has a transfer waiting for an answer: "
                      "wait for it, or withdraw it first.")
    transfer_id = uuid.uuid4()
    gate = require_consent(child, "referral", user, data.get("override_reason"), on=today,
                           action="transfer", target_id=transfer_id)
    transfer = Transfer(id=transfer_id, child_id=child.id, from_agency_id=child.agency_id, to_agency_id=to_agency.id,
                        reason=reason, consent_overridden=gate == OVERRIDDEN, proposed_by_id=user.id,
                        proposed_on=today)
    db.session.add(transfer)
    audit("transfer.propose", actor=user, child_id=child.id, target=transfer.id, to_agency_id=str(to_agency.id),
          consent="override" if transfer.consent_overridden else "given")
    db.session.flush()
    return transfer


def decide_transfer(transfer: Transfer, to_status: str, user, *, today: date, note: str | None = None,
                    source: str = "web") -> Transfer:
    """Accept, decline or withdraw a proposed transfer. Accepting re-checks the consent (unless the
    proposal was an override), moves the child to the receiving agency and unassigns its caseworker."""
    if transfer.status != "proposed":
        raise InvalidTransition(f"This transfer is already {transfer.status}: it can no longer change.",
                                {"status": transfer.status, "allowed": []})
    if to_status not in STEP_SIDE:
        raise InvalidTransition(f"A proposed transfer cannot become {to_status}. "
                                f"Allowed: {', '.join(STEP_SIDE)}.",
                                {"status": transfer.status, "allowed": list(STEP_SIDE)})
    side = STEP_SIDE[to_status]
    if not _manager_of(user, transfer.to_agency_id if side == "receiving" else transfer.from_agency_id):
        raise NotAgencyManager(side)
    note = (note or "").strip() or None
    if note and len(note) > MAX_TEXT:
        raise FieldErrors({"note": [f"At most {MAX_TEXT} characters (got {len(note)})."]})
    if to_status == "accepted":
        child = db.session.get(Child, transfer.child_id)
        if child.deleted_at is not None or child.deidentified_at is not None:
            raise RecordDeidentified("This case was deleted or de-identified: it can no longer be transferred.")
        if not transfer.consent_overridden:
            require_consent(child, "referral", user, None, on=today, action="transfer", target_id=transfer.id)
        _move_child(child, transfer.to_agency_id, user, source)
    transfer.status, transfer.decided_by_id, transfer.decided_on = to_status, user.id, today
    transfer.decided_at, transfer.decision_note = utcnow(), note
    audit(f"transfer.{to_status}", actor=user, child_id=transfer.child_id, target=transfer.id)
    db.session.flush()
    return transfer


def _move_child(child, agency_id, user, source: str) -> None:
    """Through the one write path, so the version steps, the history says who, and unassigning writes
    the scope change that makes the old caseworker's devices remove the child."""
    from models.records import Actor, update_record

    update_record(child, {"agency_id": agency_id, "caseworker": None}, Actor(user=user, source=source))


def transfers_of(child_id) -> list[Transfer]:
    return db.session.execute(db.select(Transfer).where(Transfer.child_id == child_id)
                              .order_by(Transfer.proposed_at.desc())).scalars().all()


def incoming_transfers(user) -> list[Transfer]:
    """The transfers waiting for an answer from ``user``'s agency (a manager's list)."""
    if user.role != "manager" or user.agency_id is None:
        return []
    return db.session.execute(db.select(Transfer).where(
        Transfer.to_agency_id == user.agency_id, Transfer.status == "proposed")
        .order_by(Transfer.proposed_at)).scalars().all()


def can_see_transfer(user, transfer: Transfer, child) -> bool:
    """Who may read a transfer: whoever may see the child, and the receiving agency's managers (who
    may not see the child yet: that is what they are deciding)."""
    return _manager_of(user, transfer.to_agency_id) or can_see_child(user, child)


def transfer_body(transfer: Transfer, case_code: str) -> dict:
    """What the API shows of a transfer (the reason: it is the case the sender makes to the receiver)."""
    return {
        "id": str(transfer.id), "child_id": str(transfer.child_id), "case_code": case_code,
        "from_agency_id": str(transfer.from_agency_id) if transfer.from_agency_id else None,
        "from_agency": transfer.from_agency.name if transfer.from_agency else None,
        "to_agency_id": str(transfer.to_agency_id), "to_agency": transfer.to_agency.name,
        "status": transfer.status, "reason": transfer.reason, "consent_overridden": transfer.consent_overridden,
        "proposed_by_id": str(transfer.proposed_by_id) if transfer.proposed_by_id else None,
        "proposed_on": transfer.proposed_on.isoformat(), "proposed_at": transfer.proposed_at.isoformat(),
        "decided_by_id": str(transfer.decided_by_id) if transfer.decided_by_id else None,
        "decided_on": transfer.decided_on.isoformat() if transfer.decided_on else None,
        "decision_note": transfer.decision_note,
    }
