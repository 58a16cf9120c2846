"""Partner agencies: the NGOs, UNICEF partners, probation and social welfare offices, health centres,
schools and vocational centres a programme refers children to. Managers keep the list; a user may
belong to one (``User.agency_id``), and a child to the agency that registered it (``Child.agency_id``).
An agency may be marked ``limits_reach``: its staff then reach only its own children (models.access).
The contact person's details are personal and encrypted at rest."""

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import audit
from models.base import UTCDateTime, db, utcnow
from models.crypto import EncryptedText
from models.errors import FieldErrors
from models.sensitivity import aggregate, personal

AGENCY_KINDS = ("ngo", "unicef_partner", "probation_social_welfare", "health_centre", "school",
                "vocational_centre", "other")
LIMITS = {"name": 120, "district": 64, "contact": 500}


class Agency(db.Model):
    __tablename__ = "agency"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, info=aggregate())
    name: Mapped[str] = mapped_column(String(120), unique=True, info=aggregate())
    kind: Mapped[str] = mapped_column(String(32), info=aggregate())
    district: Mapped[str | None] = mapped_column(String(64), info=aggregate())
    contact: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    active: Mapped[bool] = mapped_column(default=True, info=aggregate())
    # Its managers and caseworkers see only the children of this agency (off: one agency sees all).
    limits_reach: Mapped[bool] = mapped_column(default=False, info=aggregate())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, info=aggregate())


def agency_problems(data: dict, agency: Agency | None = None) -> dict[str, list[str]]:
    """What is wrong with an agency's fields, per field; the web and the API ask the same questions."""
    problems = {}
    name = data.get("name", agency.name if agency else None)
    if not name or not name.strip():
        problems["name"] = ["Give the agency's name."]
    elif db.session.execute(db.select(Agency.id).where(Agency.name == name.strip(),
                                                       Agency.id != getattr(agency, "id", None))).first():
        problems["name"] = [f"An agency named '{name.strip()}' already exists."]
    kind = data.get("kind", agency.kind if agency else None)
    if kind not in AGENCY_KINDS:
        problems["kind"] = [f"Choose one of: {', '.join(AGENCY_KINDS)}."]
    for field, most in LIMITS.items():
        value = data.get(field)
        if value and len(value) > most:
            problems[field] = [f"At most {most} characters (got {len(value)})."]
    return problems


def save_agency(data: dict, agency: Agency | None = None) -> Agency:
    """Create an agency or change one; refuses invalid fields with ``FieldErrors``. Flushes."""
    problems = agency_problems(data, agency)
    if problems:
        raise FieldErrors(problems)
    agency = agency or Agency()
    for field in ("name", "kind", "district", "contact", "active", "limits_reach"):
        if field in data:
            value = data[field]
            setattr(agency, field, value.strip() if isinstance(value, str) else value)
    db.session.add(agency)
    db.session.flush()
    return agency


def set_user_agency(user, agency_id, actor) -> None:
    """Put ``user`` in an agency (``agency_id`` as a form or the API sends it; empty: none), audited.
    Refuses an unknown agency. Flushes."""
    agency = None
    if agency_id:
        try:
            agency = db.session.get(Agency, uuid.UUID(str(agency_id)))
        except ValueError:
            agency = None
        if agency is None:
            raise FieldErrors({"agency_id": ["No agency with this id."]})
    new_id = agency.id if agency else None
    if user.agency_id == new_id:
        return
    user.agency_id = new_id
    audit("user.agency", actor=actor, target=user.id, agency_id=str(new_id) if new_id else None)
    db.session.flush()
