"""Alerts (DESIGN §2): the scan, a set-based pass that as of a date writes the alerts the passing of
time calls for; the alerts a change raises at once (called from ``models.planning.after_changes``);
and resolving the ones that no longer apply.

Every alert has a unique key ``<child>:<rule>:<due date>:<recipient>`` (ids as 32 hex digits). Alerts
are written with ``INSERT … SELECT … ON CONFLICT (key) DO NOTHING``: the database, not this code,
guarantees that no pass, however often and however many schedulers run it, writes the same alert
twice. Nothing here loops over children: the rules are a few SELECTs that go in one INSERT.

Rules (the recipient is the child's caseworker unless it says managers):

=====================  ========  ==========================================================
rule                   severity  when
=====================  ========  ==========================================================
<kind>_due_soon        info      a scheduled follow-up is due within DUE_SOON_DAYS
<kind>_due             info      it is due today
<kind>_overdue         warning   it is past due and still scheduled
<kind>_escalated       warning   managers: overdue by ESCALATE_OVERDUE_DAYS or more
reception_warn         warning   the reception stay reaches RECEPTION_WARN_DAYS
reception_overdue      warning   the reception stay reaches RECEPTION_OVERDUE_DAYS
reception_escalated    warning   managers: the stay is ESCALATE_OVERDUE_DAYS past that
missed_in_row          warning   caseworker and managers, at once from ``after_changes``: the
                                 last ESCALATE_MISSED_IN_ROW visits were all missed (or the
                                 child was not seen)
closure_eligible       info      in follow_up for MIN_FOLLOW_UP_DAYS since reunification
danger_reported        urgent    managers, at once from ``after_changes``: a visit reports
                                 the child abducted, with an armed group or detained, or a
                                 re-recruitment or protection concern
consent_adult          info      an open case whose child turns 18 this year (birth year + 18),
                                 with no consent given by the child since 1 January of that
                                 year: re-seek consent from the child as an adult. Due on that
                                 1 January (only the birth year is in clear; see
                                 ``consent_adult_candidates``); resolved when such a consent
                                 is recorded
referral_overdue       warning   caseworker and managers: a referral sent
                                 REFERRAL_RESPONSE_DAYS ago or more is still not accepted or
                                 declined; due on the day the answer was expected; resolved
                                 when the child has no referral waiting for an answer
=====================  ========  ==========================================================

``<kind>`` is ``visit``, ``plan_review`` or ``assessment``.
"""

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import (
    Date,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)

from models.accounts import User
from models.base import UTCDateTime, db, upsert_insert, utcnow
from models.change_set import written
from models.changes import ChangeCounter, allocate_seq
from models.children import Child
from models.followups import Alert, Followup
from models.lifecycle import OPEN_STAGES, StageTransition
from models.records import Actor, change_record
from models.referrals import Referral

SYSTEM = Actor(user=None, source="system")
DANGER_RULE = "danger_reported"
# The transition an urgent danger alert offers (DESIGN §2).
DANGER_TRANSITION = "missing"
LIVE = ("open", "acknowledged")

F = Followup.__table__
C = Child.__table__
U = User.__table__
A = Alert.__table__
T = StageTransition.__table__
R = Referral.__table__

# How a follow-up kind is named in rule names.
KIND_PREFIX = {"visit": "visit", "plan_review": "plan_review", "assessment_due": "assessment",
               "reception_review": "reception"}
SEVERITY = {"due_soon": "info", "due": "info", "overdue": "warning", "escalated": "warning",
            "warn": "warning"}


class Created:
    """The alerts one INSERT … SELECT wrote: the sequence numbers from ``first`` to ``last``, which
    only this transaction could use. Rows are read only when asked for, as plain rows (a big first
    pass may write hundreds of thousands)."""

    COLUMNS = ("id", "key", "rule", "severity", "child_id", "followup_id", "recipient_id", "due_on", "status",
               "version", "seq")

    def __init__(self, first: int = 0, last: int = -1):
        self.first, self.last = first, last
        self._rows = None

    def _where(self, query):
        return query.where(A.c.seq.between(self.first, self.last))

    @property
    def rows(self) -> list:
        if self._rows is None:
            self._rows = [] if self.last < self.first else list(db.session.execute(
                self._where(select(*(A.c[name] for name in self.COLUMNS))).order_by(A.c.seq)))
        return self._rows

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def __len__(self) -> int:
        if self._rows is not None or self.last < self.first:
            return len(self.rows)
        return db.session.execute(self._where(select(func.count()).select_from(A))).scalar_one()

    def by_rule(self) -> dict[str, int]:
        if self.last < self.first:
            return {}
        rows = db.session.execute(self._where(select(A.c.rule, func.count()).group_by(A.c.rule)))
        return dict(sorted(rows.all()))


@dataclass(frozen=True)
class ScanResult:
    created: Created
    resolved: int

    def summary(self) -> dict[str, int]:
        return self.created.by_rule()


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def uuid_hex(column):
    """An id as 32 lower-case hex digits in SQL: how SQLite stores it, and how keys spell it."""
    if _dialect() == "postgresql":
        return func.replace(cast(column, String), "-", "", type_=String)
    return cast(column, String)


def add_days(column, n: int):
    if _dialect() == "postgresql":
        return column + n
    return func.date(column, f"{n:+d} days", type_=Date)


def new_id():
    if _dialect() == "postgresql":
        return func.gen_random_uuid()
    return func.lower(func.hex(func.randomblob(16)))


def alert_key(child_id: UUID, rule: str, due_on: date | None, recipient_id: UUID) -> str:
    """The key the SQL writes, spelled in Python (for tests and callers that look one up)."""
    return f"{child_id.hex}:{rule}:{due_on.isoformat() if due_on else ''}:{recipient_id.hex}"


def _rule_for(state: str, kind=F.c.kind):
    return case(*((kind == k, f"{prefix}_{state}") for k, prefix in KIND_PREFIX.items()),
                else_=f"followup_{state}")


def _managers():
    return select(U.c.id).where(U.c.role == "manager", U.c.active.is_(True)).subquery()


def _candidate(columns: dict):
    """One rule's SELECT, with the columns every candidate alert has, in one order."""
    order = ("child_id", "followup_id", "rule", "severity", "recipient_id", "due_on")
    return [columns[name].label(name) for name in order]


def _open_child():
    return and_(C.c.deleted_at.is_(None), C.c.stage.in_(OPEN_STAGES))


def followup_candidates(today: date, rules: dict) -> list:
    """The SELECTs for scheduled follow-ups: one reminder to the caseworker per follow-up and day
    (due soon, due, overdue; for a reception stay: warn, overdue), and the escalation to managers.

    The pending follow-ups are read once (a CTE both SELECTs share), and a CASE picks the one
    reminder that applies today: they follow each other as the days pass."""
    soon = today + timedelta(days=rules["DUE_SOON_DAYS"])
    warn = today + timedelta(days=rules["RECEPTION_OVERDUE_DAYS"] - rules["RECEPTION_WARN_DAYS"])
    escalate = today - timedelta(days=rules["ESCALATE_OVERDUE_DAYS"])
    pending = (
        select(F.c.id, F.c.child_id, F.c.kind, F.c.due_on, C.c.caseworker_id)
        .select_from(F.join(C, C.c.id == F.c.child_id))
        .where(F.c.status == "scheduled", F.c.due_on <= max(soon, warn), F.c.deleted_at.is_(None), _open_child())
        .cte("pending")
    )
    p = pending.c
    reception = p.kind == "reception_review"
    rule = case(
        (and_(reception, p.due_on <= today), "reception_overdue"),
        (and_(reception, p.due_on <= warn), "reception_warn"),
        (reception, None),
        (p.due_on < today, _rule_for("overdue", p.kind)),
        (p.due_on == today, _rule_for("due", p.kind)),
        (p.due_on <= soon, _rule_for("due_soon", p.kind)),
        else_=None,
    )
    severity = case((or_(reception, p.due_on < today), "warning"), else_="info")
    reminder = select(*_candidate({
        "child_id": p.child_id, "followup_id": p.id, "rule": rule, "severity": severity,
        "recipient_id": p.caseworker_id, "due_on": p.due_on,
    })).where(p.caseworker_id.is_not(None), rule.is_not(None))
    managers = _managers()
    escalated = select(*_candidate({
        "child_id": p.child_id, "followup_id": p.id, "rule": _rule_for("escalated", p.kind),
        "severity": literal(SEVERITY["escalated"]), "recipient_id": managers.c.id, "due_on": p.due_on,
    })).select_from(pending.join(managers, true())).where(p.due_on <= escalate)
    return [reminder, escalated]


def missed_in_row_candidates(streak_followup_ids: list[UUID]) -> list:
    """Visits missed in a row: to the caseworker and to every manager, keyed on the due date of the
    last visit missed. Which runs are long enough is worked out by ``models.planning.missed_streak``
    from the records planning has just read: a run can only start or end when a visit outcome is
    recorded, and every such change passes through ``after_changes``; so this is raised at once for
    the children just changed, not by re-reading every visit of the programme at each scan."""
    managers = _managers()
    streak = (select(F.c.child_id, F.c.due_on, C.c.caseworker_id)
              .select_from(F.join(C, C.c.id == F.c.child_id))
              .where(F.c.id.in_(streak_followup_ids), _open_child()).subquery("streak"))

    def to(recipient, source):
        return select(*_candidate({
            "child_id": streak.c.child_id, "followup_id": cast(null(), Alert.followup_id.type),
            "rule": literal("missed_in_row"), "severity": literal("warning"), "recipient_id": recipient,
            "due_on": streak.c.due_on,
        })).select_from(source)

    return [
        to(streak.c.caseworker_id, streak).where(streak.c.caseworker_id.is_not(None)),
        to(managers.c.id, streak.join(managers, true())),
    ]


def closure_candidates(today: date, rules: dict) -> list:
    """Children in follow-up for MIN_FOLLOW_UP_DAYS since their first reunification. Driven from
    the children in ``follow_up`` (stage index), their transitions looked up by child."""
    minimum = rules["MIN_FOLLOW_UP_DAYS"]
    since = (select(C.c.id.label("child_id"), C.c.caseworker_id, func.min(T.c.occurred_on).label("reunified_on"))
             .select_from(C.join(T, T.c.child_id == C.c.id))
             .where(C.c.stage == "follow_up", C.c.deleted_at.is_(None), C.c.caseworker_id.is_not(None),
                    T.c.to_stage == "reunified", T.c.deleted_at.is_(None))
             .group_by(C.c.id, C.c.caseworker_id).subquery("since"))
    return [select(*_candidate({
        "child_id": since.c.child_id, "followup_id": cast(null(), Alert.followup_id.type),
        "rule": literal("closure_eligible"), "severity": literal("info"), "recipient_id": since.c.caseworker_id,
        "due_on": add_days(since.c.reunified_on, minimum),
    })).where(since.c.reunified_on <= today - timedelta(days=minimum))]


CONSENT_ADULT_RULE = "consent_adult"
ADULT_AGE = 18


def year_start(year):
    """1 January of a year held in an integer column, as a SQL date."""
    if _dialect() == "postgresql":
        return func.make_date(year, 1, 1)
    return func.date(func.printf("%04d-01-01", year), type_=Date)


def _adult_consent_given(child_id, since):
    """A live consent the child gave themselves on or after ``since``."""
    from models.care import Consent

    K = Consent.__table__
    return exists().where(K.c.child_id == child_id, K.c.given_by == "child", K.c.given_on >= since,
                          K.c.deleted_at.is_(None))


def consent_adult_candidates(today: date) -> list:
    """Open cases of children who turn 18 in or before this year, to their caseworker, keyed on
    1 January of the year they turn 18: raised once per child. The date of birth is encrypted, and
    reading it would mean decrypting every child at each scan, so the clear birth year stands for it
    (for most children here it is all that is known anyway); the alert says "turns 18 this year" and
    the caseworker, who sees the date of birth, asks on the day. A consent the child gave themselves
    on or after that 1 January means it was already asked for: no alert."""
    adult_from = year_start(C.c.birth_year + ADULT_AGE)
    asked = _adult_consent_given(C.c.id, adult_from)
    return [select(*_candidate({
        "child_id": C.c.id, "followup_id": cast(null(), Alert.followup_id.type),
        "rule": literal(CONSENT_ADULT_RULE), "severity": literal("info"), "recipient_id": C.c.caseworker_id,
        "due_on": adult_from,
    })).where(_open_child(), C.c.caseworker_id.is_not(None), C.c.birth_year <= today.year - ADULT_AGE, ~asked)]


REFERRAL_RULE = "referral_overdue"


def referral_overdue_candidates(today: date, rules: dict) -> list:
    """Referrals still waiting for the receiver's answer REFERRAL_RESPONSE_DAYS after they were sent,
    to the child's caseworker and every manager. Driven from the referrals in ``sent`` (status index)."""
    days = rules["REFERRAL_RESPONSE_DAYS"]
    waiting = (select(R.c.child_id, func.min(R.c.sent_on).label("sent_on"), C.c.caseworker_id)
               .select_from(R.join(C, C.c.id == R.c.child_id))
               .where(R.c.status == "sent", R.c.sent_on <= today - timedelta(days=days), _open_child())
               .group_by(R.c.child_id, C.c.caseworker_id).subquery("waiting"))
    managers = _managers()

    def to(recipient, source):
        return select(*_candidate({
            "child_id": waiting.c.child_id, "followup_id": cast(null(), Alert.followup_id.type),
            "rule": literal(REFERRAL_RULE), "severity": literal("warning"), "recipient_id": recipient,
            "due_on": add_days(waiting.c.sent_on, days),
        })).select_from(source)

    return [to(waiting.c.caseworker_id, waiting).where(waiting.c.caseworker_id.is_not(None)),
            to(managers.c.id, waiting.join(managers, true()))]


def _referral_waiting(child_id):
    return exists().where(R.c.child_id == child_id, R.c.status == "sent")


def danger_candidates(followup_ids: list[UUID]) -> list:
    managers = _managers()
    return [select(*_candidate({
        "child_id": F.c.child_id, "followup_id": F.c.id, "rule": literal(DANGER_RULE),
        "severity": literal("urgent"), "recipient_id": managers.c.id,
        "due_on": func.coalesce(F.c.completed_on, F.c.due_on),
    })).select_from(F.join(C, C.c.id == F.c.child_id).join(managers, true())).where(
        F.c.id.in_(followup_ids), C.c.deleted_at.is_(None))]


def insert_alerts(selects: list) -> Created:
    """Write the candidate alerts that do not exist yet, in one INSERT … SELECT.

    The change counter is locked first (through ``allocate_seq``, whose one number is spare) and
    stays locked until commit, so the rows can number themselves from it with ``row_number()`` and
    the counter is then moved past them: the candidates are evaluated once, and sequence order still
    follows commit order. A concurrent scan waits for the lock and then finds the keys taken.
    """
    candidates = union_all(*selects).subquery("candidate")
    key = (uuid_hex(candidates.c.child_id) + ":" + candidates.c.rule + ":"
           + cast(candidates.c.due_on, String) + ":" + uuid_hex(candidates.c.recipient_id))
    base = allocate_seq(db.session, 1)
    now = bindparam("now", utcnow(), type_=UTCDateTime())
    rows = select(
        new_id(), key, candidates.c.rule, candidates.c.severity, candidates.c.child_id, candidates.c.followup_id,
        candidates.c.recipient_id, candidates.c.due_on, literal("open"), literal(1),
        literal(base) + func.row_number().over(), now, now,
    ).where(~exists().where(A.c.key == key))  # also the WHERE SQLite needs before ON CONFLICT
    insert = upsert_insert(A)
    db.session.execute(
        insert.from_select(["id", "key", "rule", "severity", "child_id", "followup_id", "recipient_id",
                            "due_on", "status", "version", "seq", "created_at", "updated_at"], rows)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    last = db.session.execute(select(func.max(A.c.seq))).scalar_one() or 0
    if last <= base:
        return Created()
    counter = ChangeCounter.__table__
    db.session.execute(update(counter).where(counter.c.id == 1, counter.c.value < last).values(value=last))
    return Created(base + 1, last)


def raise_for_changes(*, danger_followup_ids: list[UUID], streak_followup_ids: list[UUID]) -> Created:
    """The alerts a change raises at once: danger reported at a visit (urgent, to every manager) and
    visits missed in a row (to the caseworker and every manager)."""
    selects = []
    if danger_followup_ids:
        selects += danger_candidates(danger_followup_ids)
    if streak_followup_ids:
        selects += missed_in_row_candidates(streak_followup_ids)
    return insert_alerts(selects) if selects else Created()


# Reminders that a later stage of the same follow-up replaces as the days pass: (rule, resolved from
# the day after its due date, or from the due date itself).
DAY_REMINDERS = [f"{prefix}_due" for kind, prefix in KIND_PREFIX.items() if kind != "reception_review"]
SOON_REMINDERS = [f"{prefix}_due_soon" for kind, prefix in KIND_PREFIX.items() if kind != "reception_review"]


def stale_alerts(today: date, child_ids: set[UUID] | None = None):
    """Open or acknowledged alerts that no longer apply: one pass over the live alerts, each joined
    to its child and its follow-up. Returns the statement and its parameters."""
    params = {"today": today}
    if child_ids is not None:
        params["child_ids"] = list(child_ids)
    return _stale_alerts_statement(child_ids is not None), params


@functools.cache
def _stale_alerts_statement(for_children: bool):
    """Built once with bind parameters: after every sync batch, building this statement and its cache
    key anew cost about as much as running it."""
    today = bindparam("today", type_=Date)
    child, followup, recipient = C.alias("c"), F.alias("f"), U.alias("u")
    moved_on = or_(child.c.deleted_at.is_not(None), child.c.stage.not_in(OPEN_STAGES))
    # A caseworker's alerts about a child reassigned to someone else: the case code is no longer theirs
    # to see (on the web, on their devices, in their e-mail); the new caseworker gets their own.
    handed_over = and_(recipient.c.role != "manager", or_(child.c.caseworker_id.is_(None),
                                                          child.c.caseworker_id != Alert.recipient_id))
    followup_settled = and_(Alert.rule != DANGER_RULE, followup.c.id.is_not(None), or_(
        followup.c.status != "scheduled", followup.c.deleted_at.is_not(None), followup.c.due_on != Alert.due_on))
    superseded = or_(and_(Alert.rule.in_([*SOON_REMINDERS, "reception_warn"]), Alert.due_on <= today),
                     and_(Alert.rule.in_(DAY_REMINDERS), Alert.due_on < today))
    query = (
        db.select(Alert)
        .outerjoin(child, child.c.id == Alert.child_id)
        .outerjoin(followup, followup.c.id == Alert.followup_id)
        .join(recipient, recipient.c.id == Alert.recipient_id)
        .where(Alert.status.in_(LIVE), or_(
            moved_on,
            handed_over,
            followup_settled,
            superseded,
            and_(Alert.rule == "closure_eligible", child.c.stage != "follow_up"),
            and_(Alert.rule == CONSENT_ADULT_RULE, _adult_consent_given(Alert.child_id, Alert.due_on)),
            and_(Alert.rule == REFERRAL_RULE, ~_referral_waiting(Alert.child_id)),
        ))
    )
    if for_children:
        query = query.where(Alert.child_id.in_(bindparam("child_ids", expanding=True, type_=Alert.child_id.type)))
    return query


def resolve_broken_streaks(last_seen_on: dict[UUID, date]) -> int:
    """Resolve "missed in a row" alerts of children seen at a later visit."""
    if not last_seen_on:
        return 0
    alerts = db.session.execute(db.select(Alert).where(
        Alert.child_id.in_(list(last_seen_on)), Alert.rule == "missed_in_row", Alert.status.in_(LIVE))).scalars()
    return _resolved([a for a in alerts if a.due_on < last_seen_on[a.child_id]])


def superseded_reminders(today: date):
    """"Due soon" and "due" reminders whose day has passed: the next alert about it takes over."""
    return db.select(Alert).where(Alert.status.in_(LIVE), or_(
        and_(Alert.rule.in_([*SOON_REMINDERS, "reception_warn"]), Alert.due_on <= today),
        and_(Alert.rule.in_(DAY_REMINDERS), Alert.due_on < today)))


def _resolve(query, params: dict | None = None) -> int:
    return _resolved(db.session.execute(query, params).scalars().all())


def _resolved(alerts: list) -> int:
    """Resolve these alerts, written with one statement per table."""
    with written() as changes:
        for alert in alerts:
            change_record(changes, alert, {"status": "resolved"}, SYSTEM)
    return len(alerts)


def resolve_stale(today: date, child_ids: set[UUID] | None = None) -> int:
    """Resolve what no longer applies: the follow-up was done, moved or cancelled, the child moved on,
    a later visit saw the child, a reminder's day passed."""
    return _resolve(*stale_alerts(today, child_ids))


def scan(today: date, rules: dict) -> ScanResult:
    """One pass over the whole programme as of ``today``. Flushes, never commits.

    What only the passing of days changes is done here: the date-driven alerts, and reminders whose
    day has passed. What a change to a record settles (a follow-up done, a child moved on) is
    resolved by ``after_changes`` for the children changed, at once; ``flask alerts replan`` re-runs
    that over every open case.
    """
    with _page_cache():
        resolved = _resolve(superseded_reminders(today))
        created = insert_alerts([*followup_candidates(today, rules), *closure_candidates(today, rules),
                                 *consent_adult_candidates(today), *referral_overdue_candidates(today, rules)])
    return ScanResult(created=created, resolved=resolved)


@contextmanager
def _page_cache(kib: int = 65536):
    """The scan reads whole tables: on SQLite, whose default page cache is 2 MB, let this connection
    cache 64 MB for the pass (about a third faster at 100,000 children), then give it back."""
    if _dialect() != "sqlite":
        yield
        return
    connection = db.session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(before)}")
