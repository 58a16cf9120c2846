"""The child: identity, origin, assignment, flags and the restricted CAAFAG profile."""

import functools
import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.accounts import User
from models.base import SyncedRecord, UTCDateTime, db
from models.crypto import EncryptedDate, EncryptedText
from models.sensitivity import aggregate, personal, restricted

# Letters and digits that cannot be confused when read aloud or typed on a phone: no 0/O, 1/I/L, U/V.
CASE_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"


@functools.lru_cache(maxsize=4096)  # a push asks for each new child's code three times
def case_code_for(child_id: uuid.UUID) -> str:
    """Eight characters from the id's first 40 bits, as ``XXXX-XXXX``.

    Derived rather than allocated, so a device offline for days knows the code of a child it just
    registered. 29^8 ≈ 5·10^11 codes; the column is unique, and the rare clash is refused so the device
    makes a new id.
    """
    n = child_id.int >> 88
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(CASE_CODE_ALPHABET))
        chars.append(CASE_CODE_ALPHABET[r])
    code = "".join(chars)
    return f"{code[:4]}-{code[4:]}"


def normalise_case_code(text: str) -> str:
    """Accept a code typed with lower case, spaces or without the dash."""
    compact = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{compact[:4]}-{compact[4:]}" if len(compact) == 8 else text.strip().upper()


class Child(SyncedRecord, db.Model):
    __tablename__ = "child"

    case_code: Mapped[str] = mapped_column(String(9), unique=True, info=aggregate())
    # Identity: personal, encrypted.
    given_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    family_name: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    other_names: Mapped[str | None] = mapped_column(EncryptedText, info=personal(doc="aliases, nicknames"))
    sex: Mapped[str] = mapped_column(String(8), info=aggregate())
    date_of_birth: Mapped[date | None] = mapped_column(EncryptedDate, info=personal())
    # Kept in clear for age bands; derived from date_of_birth when that is known.
    birth_year: Mapped[int | None] = mapped_column(info=aggregate())
    age_estimation_method: Mapped[str | None] = mapped_column(String(16), info=aggregate())
    # Origin: the district is aggregate, anything finer identifies a family.
    district: Mapped[str | None] = mapped_column(String(64), index=True, info=aggregate())
    sub_county: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    parish: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    village: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    current_location: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    family_contacts: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    # Identification (stage `identified`).
    identified_on: Mapped[date | None] = mapped_column(Date, info=aggregate())
    exit_place: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    handed_over_by: Mapped[str | None] = mapped_column(EncryptedText, info=personal())
    # Assignment and flags.
    caseworker_id: Mapped[uuid.UUID | None] = mapped_column(  # indexed with seq: ix_child_caseworker_seq
        ForeignKey("user.id"), info=personal(api="caseworker")
    )
    # The owning agency (issue 13): the registering user's, changed only by an accepted transfer
    # (models.transfers). Server-side: devices never get it (``dumped=False``).
    agency_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agency.id"), index=True, info=aggregate(dumped=False))
    risk_level: Mapped[str | None] = mapped_column(String(8), info=aggregate())
    child_mother: Mapped[bool] = mapped_column(default=False, info=aggregate())
    disability: Mapped[bool] = mapped_column(default=False, info=aggregate())
    unaccompanied: Mapped[bool] = mapped_column(default=False, info=aggregate())
    # Derived from the stage transitions; only models.lifecycle.transition writes them.
    stage: Mapped[str] = mapped_column(String(16), default="identified", info=aggregate())
    stage_since: Mapped[date | None] = mapped_column(Date, info=aggregate())
    # Set when a sync conflict waits for a person.
    needs_review: Mapped[bool] = mapped_column(default=False, info=aggregate())
    # Set when retention (models.retention) erased the child's personal and restricted values: the case
    # stays in the reports, nobody can edit or reopen it, and retention skips it from then on.
    deidentified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, info=aggregate())
    # Set when a manager merged this registration into another (models.merging): the child is soft-deleted
    # with it, kept for audit and history. Not sent to devices: they receive ``remove`` for the child.
    merged_into: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("child.id"), index=True, info=aggregate(dumped=False))
    # The CAAFAG profile: restricted.
    armed_group: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())
    role_in_group: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())
    recruitment: Mapped[str | None] = mapped_column(EncryptedText, info=restricted(doc="how recruited"))
    date_joined: Mapped[date | None] = mapped_column(EncryptedDate, info=restricted())
    date_left: Mapped[date | None] = mapped_column(EncryptedDate, info=restricted())
    how_left: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())
    sexual_violence: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())
    restricted_notes: Mapped[str | None] = mapped_column(EncryptedText, info=restricted())

    caseworker: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_child_stage_district", "stage", "district"),
        # Covers the dashboard's one GROUP BY (stage, sex, age, review flag): an index-only scan.
        Index("ix_child_dashboard", "stage", "sex", "birth_year", "needs_review", "deleted_at"),
        # The children list in case-code order: pages are found in the index alone, then 50 rows read.
        Index("ix_child_case_code_live", "case_code", "deleted_at", "id"),
        # Follow-ups summed per caseworker and district find each child's two columns in the index,
        # not in its row (tens of thousands of lookups on /followups).
        Index("ix_child_id_scope", "id", "caseworker_id", "district", "deleted_at"),
        # A caseload's children, and a pull's walk of their changes after the cursor.
        Index("ix_child_caseworker_seq", "caseworker_id", "seq"),
    )

    def __repr__(self):
        return f"<Child {self.case_code} {self.stage}>"
