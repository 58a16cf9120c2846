"""The donor indicators of DESIGN §6 as set-based SQL over a date range.

Each indicator function returns one row per combination of the disaggregation dimensions (sex, age
band, district, child mother) with its count, so the page, the charts and the export all add up the
same cube. No function returns anything that identifies a child; suppression of small cells is applied
on display (``models.disclosure``). Definitions are written out in ``docs/reports.md``.
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import String as SAString
from sqlalchemy import and_, case, cast, func, or_, select

from models.age_bands import AGE_BANDS, age_band_condition
from models.base import db
from models.care import Service
from models.children import Child
from models.followups import Followup
from models.lifecycle import StageTransition
from models.vocab import FOLLOWUP_STATUSES

DIMENSIONS = ("sex", "age_band", "district", "child_mother")
SCHOOL_OR_TRAINING = ("education", "vocational_training")
# A service that ran during the period counts whether it is still running or has since finished; a
# dropped one does not (the dropout is reported as a concern instead).
RUNNING_STATUSES = ("active", "completed")
MISSING_CONCERN = "re_recruitment"
COUNTED_FOLLOWUP_STATUSES = tuple(s for s in FOLLOWUP_STATUSES if s != "cancelled")


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError("The end of the period is before its start.")


def age_band(as_of_year: int):
    """The child's age band at ``as_of_year`` (the end of the period) as a SQL expression, from the
    same conditions the web filters use, so a report and a filtered list agree."""
    return case(*((age_band_condition(band, as_of_year), band) for band in AGE_BANDS), else_="unknown")


def _with_dimensions(facts, period: Period):
    """``facts`` (a subquery with ``child_id``) joined to each live child's dimensions, as a subquery,
    so the outer GROUP BY names plain columns (PostgreSQL would not match two copies of the age-band
    expression with their own bound year)."""
    return (
        select(facts, Child.sex.label("sex"), age_band(period.end.year).label("age_band"),
               Child.district.label("district"), Child.child_mother.label("child_mother"))
        .join(Child, Child.id == facts.c.child_id)
        .where(Child.deleted_at.is_(None))
        .subquery()
    )


def _count_children(child_ids, period: Period) -> list[dict]:
    """Group the children selected by ``child_ids`` (a one-column select) by the dimensions. The ids
    are made distinct first, then each child is found by its key: no scan of the child table."""
    ids = select(child_ids.subquery().c[0].label("child_id")).distinct().subquery()
    rows = _with_dimensions(ids, period)
    keys = [rows.c[d] for d in DIMENSIONS]
    result = db.session.execute(select(*keys, func.count().label("n")).group_by(*keys)).mappings()
    return [_clean(row) for row in result]


def _clean(row) -> dict:
    row = dict(row)
    row["child_mother"] = bool(row["child_mother"])
    return row


def _transitions_to(stage: str, period: Period):
    return select(StageTransition.child_id).where(
        StageTransition.to_stage == stage,
        StageTransition.occurred_on.between(period.start, period.end),
        StageTransition.deleted_at.is_(None),
    )


def identified_ids(period: Period):
    """Children whose identification date (release, escape, capture, hand-over) is in the period."""
    return select(Child.id).where(Child.identified_on.between(period.start, period.end))


def registered_ids(period: Period):
    """Children who entered the stage ``registered`` in the period."""
    return _transitions_to("registered", period)


def reunified_ids(period: Period):
    """Children returned to family or placed in alternative care in the period."""
    return _transitions_to("reunified", period)


def school_or_training_ids(period: Period):
    """Children with an education or vocational training service running at some time in the period."""
    return select(Service.child_id).where(
        Service.type.in_(SCHOOL_OR_TRAINING),
        Service.status.in_(RUNNING_STATUSES),
        Service.deleted_at.is_(None),
        or_(Service.started_on.is_(None), Service.started_on <= period.end),
        or_(Service.ended_on.is_(None), Service.ended_on >= period.start),
    )


def _concern(concern: str):
    """Follow-ups whose concerns list names ``concern``. The list is JSON of fixed vocabulary words,
    so matching the quoted word in its text form is exact and works on SQLite and PostgreSQL alike."""
    return cast(Followup.concerns, SAString).like(f'%"{concern}"%')


def rerecruited_or_missing_ids(period: Period):
    """Children who went missing in the period (stage ``missing`` entered), or about whom a follow-up
    in the period recorded a re-recruitment concern or that they were with an armed group."""
    on = func.coalesce(Followup.completed_on, Followup.due_on)
    return _transitions_to("missing", period).union(
        select(Followup.child_id).where(
            Followup.deleted_at.is_(None),
            on.between(period.start, period.end),
            or_(_concern(MISSING_CONCERN), Followup.not_seen_reason.in_(("abducted", "with_armed_group"))),
        )
    )


def followups_on_time(period: Period, today: date | None = None) -> list[dict]:
    """Follow-ups that fell due in the period (and by ``today``, so ones not yet due don't count as
    late), with how many were done on or before their due date. Cancelled and deleted ones are left
    out. Rows carry ``due`` and ``on_time`` (counts of follow-ups, not of children)."""
    last_due = min(period.end, today) if today else period.end
    on_time = case(
        (and_(Followup.status == "done", Followup.completed_on <= Followup.due_on), 1), else_=0
    )
    # Summed per child first (one row per child instead of one per visit), then joined to the child.
    per_child = (
        select(Followup.child_id.label("child_id"), func.count().label("due_n"),
               func.sum(on_time).label("on_time_n"))
        # Listing the statuses (rather than "not cancelled") lets the (status, due_on) index serve.
        .where(Followup.status.in_(COUNTED_FOLLOWUP_STATUSES), Followup.due_on.between(period.start, last_due),
               Followup.deleted_at.is_(None))
        .group_by(Followup.child_id)
        .subquery()
    )
    rows = _with_dimensions(per_child, period)
    keys = [rows.c[d] for d in DIMENSIONS]
    result = db.session.execute(
        select(*keys, func.sum(rows.c.due_n).label("due"), func.sum(rows.c.on_time_n).label("on_time"))
        .group_by(*keys)
    ).mappings()
    return [_clean(row) for row in result]


def closures_by_reason(period: Period) -> list[dict]:
    """Children whose case was closed in the period, by closure reason. Rows carry ``reason``."""
    closed = (
        select(StageTransition.child_id.label("child_id"), StageTransition.closure_reason.label("reason"))
        .where(StageTransition.to_stage == "closed",
               StageTransition.occurred_on.between(period.start, period.end),
               StageTransition.deleted_at.is_(None))
        .distinct()
        .subquery()
    )
    rows = _with_dimensions(closed, period)
    keys = [rows.c.reason, *(rows.c[d] for d in DIMENSIONS)]
    result = db.session.execute(select(*keys, func.count().label("n")).group_by(*keys)).mappings()
    return [_clean(row) for row in result]


# The indicators that count children, in the order a report lists them: key -> (label, ids function).
CHILD_INDICATORS = {
    "identified": ("Children identified", identified_ids),
    "registered": ("Children registered", registered_ids),
    "reunified": ("Children reunified", reunified_ids),
    "school_or_training": ("Children in school or training", school_or_training_ids),
    "rerecruited_or_missing": ("Children re-recruited or missing", rerecruited_or_missing_ids),
}


def count_children(key: str, period: Period) -> list[dict]:
    """The cube of one child-counting indicator: rows of the dimensions and ``n``."""
    return _count_children(CHILD_INDICATORS[key][1](period), period)


def referrals_by_service_and_outcome(period: Period) -> list[dict]:
    """Referrals proposed in the period, by service type and where each stands now. Rows carry
    ``service_type``, ``status`` and ``n``; a referral counts once, however many steps it took."""
    from models.referrals import Referral, ReferralStep

    proposed = (select(Referral.service_type, Referral.status, func.count().label("n"))
                .join(ReferralStep, and_(ReferralStep.referral_id == Referral.id, ReferralStep.status == "proposed"))
                .join(Child, Child.id == Referral.child_id)
                .where(ReferralStep.occurred_on.between(period.start, period.end), Child.deleted_at.is_(None))
                .group_by(Referral.service_type, Referral.status))
    return [dict(row) for row in db.session.execute(proposed).mappings()]


# The dated event of each indicator the monthly trend counts: (table's date column, ids select).
def _dated(key: str, period: Period):
    if key == "identified":
        return select(Child.id.label("child_id"), Child.identified_on.label("on")).where(
            Child.identified_on.between(period.start, period.end))
    stage = {"registered": "registered", "reunified": "reunified", "closed": "closed"}[key]
    return select(StageTransition.child_id.label("child_id"), StageTransition.occurred_on.label("on")).where(
        StageTransition.to_stage == stage, StageTransition.occurred_on.between(period.start, period.end),
        StageTransition.deleted_at.is_(None))


def month_of(column):
    """``YYYY-MM`` of a date column, in the database's own words (both sort and compare as text)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def monthly_counts(key: str, period: Period) -> dict[str, int]:
    """Children of an indicator per calendar month of the period ({"2026-03": n}): one grouped query.
    A child counts once per month (twice closed in a month is one closure that month), and only live
    children count, as in the report."""
    events = _dated(key, period).subquery()
    month = month_of(events.c.on).label("month")
    per_child = (select(month, events.c.child_id).join(Child, Child.id == events.c.child_id)
                 .where(Child.deleted_at.is_(None)).distinct().subquery())
    return dict(db.session.execute(
        select(per_child.c.month, func.count()).group_by(per_child.c.month)).all())
