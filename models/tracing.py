"""Family tracing (issue 14): a family's request for a missing child, the traces done for it, the link
between a request and a registered child, and the family verification that reunification needs.

A request names its sought child with the same field names as ``Child`` (given_name, family_name,
other_names, sex, birth_year, district … armed_group), so matching (models.matching) reads both alike.
Personal values are sealed like a child's; the armed group is restricted (managers only). Requests and
traces are synced records: the web, the API and a device's push (sync.push_tracing_referrals) write
them through ``models.records``, so every version has its history row.
"""

import uuid
from datetime import date, datetime

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import Date, ForeignKey, String, UniqueConstraint, false, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models import vocab
from models.accounts import User
from models.base import SyncedRecord, UTCDateTime, db, utcnow
from models.change_set import ChangeSet, new, written
from models.changes import ScopeChange
from models.children import Child
from models.consent_gates import require_consent
from models.crypto import EncryptedDate, EncryptedText
from models.districts import District
from models.errors import FieldErrors, Problem
from models.records import Actor, _resolve_caseworker, add_record, change_record, register_entity
from models.schemas import FIELD_SCHEMAS, Strict, no_future, text
from models.sensitivity import aggregate, personal, restricted

REQUEST_STATUSES = ("open", "matched", "reunified", "closed")
RELATIONSHIPS = ("mother", "father", "grandparent", "sibling", "aunt_uncle", "other_relative", "guardian",
                 "other")
TRACE_KINDS = ("radio_announcement", "home_visit", "community_meeting", "phone_call", "photo_tracing",
               "letter", "other")
# The fields a request's sought child shares with ``Child``: what matching compares.
SOUGHT_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_year", "district", "sub_county",
                 "parish", "village", "armed_group")


class TracingRequest(SyncedRecord, db.Model):
    """Synced to the devices of the caseworker who follows it while open or matched (docs/sync-protocol.md)."""

    __tablename__ = "tracing_request"

    status: Mapped[str] = mapped_column(String(16), default="open", index=True, info=aggregate())
    # The caseworker who follows the request (and may see it); managers see every request.
    caseworker_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id"), index=True, info=personal(api="caseworker"))
    # The inquirer: the family member asking.
    inquirer_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    inquirer_relationship: Mapped[str] = mapped_column(String(16), info=aggregate())
    inquirer_contact: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    # Who is sought.
    given_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    family_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    other_names: Mapped[str | None] = mapped_column(EncryptedText, info=personal(doc="aliases, nicknames"))
    sex: Mapped[str] = mapped_column(String(8), info=aggregate())
    # An approximate age is kept as the year of birth it gives (an age goes stale; a year does not).
    birth_year: Mapped[int | None] = mapped_column(info=aggregate())
    separation_date: Mapped[date | None] = mapped_column(EncryptedDate, info=personal())
    separation_place: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    district: Mapped[str | None] = mapped_column(String(64), index=True, info=aggregate())
    sub_county: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    parish: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    village: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    armed_group: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())
    notes: Mapped[str | None] = mapped_column(EncryptedText, info=personal())

    caseworker: Mapped[User | None] = relationship(lazy="joined")


class Trace(SyncedRecord, db.Model):
    """One action taken for a request: a radio announcement, a home visit … Append-only; synced with
    its request."""

    __tablename__ = "trace"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tracing_request.id", ondelete="CASCADE"),
                                                  index=True, info=aggregate())
    kind: Mapped[str] = mapped_column(String(24), info=aggregate())
    done_on: Mapped[date] = mapped_column(Date, info=aggregate())
    note: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"), info=aggregate())


register_entity("tracing_request", TracingRequest)
register_entity("trace", Trace)


class TracingLink(db.Model):
    """A request found to be about a registered child (a confirmed match), and its family verification."""

    __tablename__ = "tracing_link"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tracing_request.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("child.id"), index=True)
    linked_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The family verification: the family and the child recognised each other (or not).
    verified_on: Mapped[date | None] = mapped_column(Date)
    verified_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id"))
    verification_note: Mapped[str | None] = mapped_column(EncryptedText, info=personal())

    __table_args__ = (UniqueConstraint("request_id", "child_id"),)


def request_scope(user):
    """A SQL condition selecting the requests ``user`` may see: all for a manager, a caseworker's own."""
    if user.role == "manager":
        return true()
    if user.role == "caseworker":
        return TracingRequest.caseworker_id == user.id
    return false()


def can_see_request(user, tracing_request: TracingRequest) -> bool:
    return user.role == "manager" or (user.role == "caseworker" and tracing_request.caseworker_id == user.id)


def _actor(user: User | None, source: str) -> Actor:
    return Actor(user=user, source=source if user is not None else "system")


def create_request(fields: dict, by: User | None = None, source: str = "api") -> TracingRequest:
    """A new request at version 1, with its history row (what a device's later stale edit merges against)."""
    with written() as changes:
        return add_record(changes, "tracing_request", _resolve_caseworker(fields), _actor(by, source),
                          record_id=uuid.uuid4())


def update_request(record: TracingRequest, fields: dict, by: User | None = None, source: str = "api") -> list[str]:
    """Apply the fields that differ and step the version once; return the names that changed."""
    with written() as changes:
        return change_request(changes, record, _resolve_caseworker(fields), _actor(by, source))


def change_request(changes: ChangeSet, record: TracingRequest, fields: dict, actor: Actor, *,
                   recorded_at: datetime | None = None) -> list[str]:
    """``change_record`` for a request; handing it to another caseworker moves it between devices."""
    before = record.caseworker_id
    changed = change_record(changes, record, fields, actor, recorded_at=recorded_at)
    if "caseworker_id" in changed:
        for user_id, kind in ((before, "remove"), (record.caseworker_id, "add")):
            if user_id is not None:
                changes.rows.append(new(ScopeChange, user_id=user_id, tracing_request_id=record.id, kind=kind))
    return changed


def trace_problems(record: TracingRequest, fields: dict) -> dict:
    # A request opened offline is made when the device recorded it, days before the server heard of it.
    made = (record.recorded_at or record.created_at).date()
    if fields["done_on"] < made:
        return {"done_on": [f"Cannot be before the request was made ({made.isoformat()})."]}
    return {}


def add_trace(record: TracingRequest, fields: dict, actor: User, source: str = "api") -> Trace:
    if problems := trace_problems(record, fields):
        raise FieldErrors(problems)
    with written() as changes:
        return add_record(changes, "trace", {"request_id": record.id, "actor_id": actor.id, **fields},
                          _actor(actor, source), record_id=uuid.uuid4())


def traces_of(record: TracingRequest) -> list[Trace]:
    return db.session.execute(db.select(Trace).where(Trace.request_id == record.id)
                              .order_by(Trace.done_on.desc(), Trace.created_at.desc())).scalars().all()


def link(request_id, child_id, by: User, *, today: date | None = None,
         override_reason: str | None = None) -> TracingLink:
    """Link a request to a child (a manager confirmed the match); the request becomes ``matched``.
    Family tracing for the child starts here: it needs the child's ``tracing`` consent, or a manager's
    override (models.consent_gates)."""
    existing = db.session.execute(db.select(TracingLink).where(
        TracingLink.request_id == request_id, TracingLink.child_id == child_id)).scalar_one_or_none()
    if existing is not None:
        return existing
    require_consent(db.session.get(Child, child_id), "tracing", by, override_reason, on=today or utcnow().date(),
                    action="tracing.link", target_id=request_id)
    record = db.session.get(TracingRequest, request_id)
    found = TracingLink(request_id=request_id, child_id=child_id, linked_by_id=by.id)
    db.session.add(found)
    if record.status == "open":
        update_request(record, {"status": "matched"}, by)
    db.session.flush()
    return found


def links_of(*, request_id=None, child_id=None) -> list[TracingLink]:
    stmt = db.select(TracingLink).order_by(TracingLink.created_at)
    if request_id is not None:
        stmt = stmt.where(TracingLink.request_id == request_id)
    if child_id is not None:
        stmt = stmt.where(TracingLink.child_id == child_id)
    return db.session.execute(stmt).scalars().all()


def verify(found: TracingLink, *, verified_on: date, note: str | None, by: User, today: date,
           override_reason: str | None = None) -> None:
    """Record that the family and the child were verified as each other's (the step before reunifying).
    The child meets the family: the ``tracing`` consent must still be in force (or a manager overrides)."""
    errors = {}
    if verified_on > today:
        errors["verified_on"] = ["Cannot be in the future."]
    elif verified_on < found.created_at.date():
        errors["verified_on"] = ["Cannot be before the request and the child were linked "
                                 f"({found.created_at.date().isoformat()})."]
    if not note:
        errors["note"] = ["Say how the family was verified (who met whom, what they recognised)."]
    if errors:
        raise FieldErrors(errors)
    if found.verified_on is not None:
        raise Problem("already_verified", "This family link is already verified.")
    require_consent(db.session.get(Child, found.child_id), "tracing", by, override_reason, on=today,
                    action="tracing.verify", target_id=found.request_id)
    found.verified_on, found.verified_by_id, found.verification_note = verified_on, by.id, note
    db.session.flush()


def has_verified_link(child_id) -> bool:
    return db.session.execute(db.select(func.count()).select_from(TracingLink).where(
        TracingLink.child_id == child_id, TracingLink.verified_on.is_not(None))).scalar_one() > 0


def reunification_problem(child: Child, to_stage: str, actor_role: str, reason: str | None) -> Problem | None:
    """Why ``child`` may not move ``tracing → reunified`` now, or None.

    The move needs a verified family link (a confirmed request ↔ child match whose family was verified),
    or a manager's override with a written reason (a family that came without a tracing request)."""
    if child.stage != "tracing" or to_stage != "reunified" or has_verified_link(child.id):
        return None
    if actor_role == "manager":
        if reason:
            return None
        return FieldErrors({"reason": ["No verified family link: say why the child is reunified without one."]})
    return Problem("family_not_verified",
                   "A child in tracing is reunified once the family is verified: confirm the tracing match "
                   "and record the verification, or ask a manager to reunify with a reason.",
                   {"from": child.stage, "to": to_stage})


class TracingRequestFields(Strict):
    """What a client sends to open or edit a request (API and web alike)."""

    caseworker = fields.String(allow_none=True, validate=validate.Length(max=64))
    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    inquirer_name = text(200, required=True)
    inquirer_relationship = fields.String(required=True, validate=validate.OneOf(RELATIONSHIPS))
    inquirer_contact = text(500)
    given_name = text(120)
    family_name = text(120)
    other_names = text(300)
    sex = fields.String(required=True, validate=validate.OneOf(vocab.SEXES))
    birth_year = fields.Integer(allow_none=True, validate=validate.Range(min=1950, max=2100))
    separation_date = fields.Date(allow_none=True, validate=no_future)
    separation_place = text(200)
    district = District(allow_none=True)
    sub_county = text(120)
    parish = text(120)
    village = text(120)
    armed_group = text(200)
    notes = text(5000)

    @validates_schema
    def some_name(self, data, partial, **kwargs):
        names = ("given_name", "family_name", "other_names")
        if not partial and not any(data.get(n) for n in names):
            raise ValidationError({"given_name": ["Give at least one name or alias of the child sought."]})


class TraceFields(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(TRACE_KINDS))
    done_on = fields.Date(required=True, validate=no_future)
    note = text(5000)


class VerificationFields(Strict):
    verified_on = fields.Date(required=True, validate=no_future)
    note = text(5000)
    override_reason = text(500)  # a manager's, when the tracing consent is missing


class DeviceTraceFields(TraceFields):
    """A trace a device pushes names its request."""

    request_id = fields.UUID(required=True)


FIELD_SCHEMAS.update(tracing_request=TracingRequestFields, trace=DeviceTraceFields)
