"""Retention (DESIGN §7): closed cases are de-identified ``RETENTION_DAYS`` after closure.

De-identifying a child erases, for that child only, every value the sensitivity metadata
(``models.sensitivity``) marks ``personal`` or ``restricted`` on the child and on each of its records
(names, aliases, date of birth, parish and village, contacts, the caseworker, notes, the CAAFAG
profile), the values kept in its record history and in its conflicts, its name-search tokens, the answers to a
programme's own OpenRosa questions kept with it (``child_extra_field``, deleted), its attachment files with
their names, hashes and keys (``models.attachments.erase_for_children``), and the XML of the OpenRosa
forms about it (``openrosa_submission``), and the verbatim payloads of
the mutations devices sent about it (``mutation_log``) with the messages answered to them. Every
``aggregate`` column survives (sex, birth year, district, stage and stage dates, risk, flags,
follow-up statuses and dates, services' types and dates), so the donor indicators
(``models.indicators``) give the same numbers before and after.

Devices: the caseworker is personal, so it is erased too; the change writes a ``ScopeChange``
``remove`` for the former caseworker, whose devices then drop the child and all its records at their
next pull (a closed child may still sit on a phone). The child's version steps once, with one history
row that names the fields erased and keeps no value, so a device still holding the old version gets
``out_of_scope`` if it pushes, and nothing it sends can bring a name back.

Everything is set-based: a batch of children is one UPDATE per table (the child row one executemany,
since each takes its own change sequence number). Each batch commits on its own, and a child is picked
only while ``deidentified_at`` is empty, so a run killed half-way is resumed by running it again.
Functions flush; ``run`` alone commits, once per batch, because it is the boundary of a long job.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, bindparam, func, insert, null, or_, select, union_all, update

from models.attachments import erase_for_children as erase_attachments
from models.audit import audit
from models.base import db, utcnow
from models.care import Assessment, Consent, Service
from models.changes import ScopeChange, allocate_seq
from models.children import Child
from models.consent_gates import ConsentOverride
from models.followups import Alert, Followup
from models.history import RecordHistory
from models.lifecycle import StageTransition
from models.openrosa import ChildExtraField, OpenRosaSubmission
from models.referrals import Referral
from models.search import delete_tokens
from models.sensitivity import PERSONAL, RESTRICTED, fields_of
from models.syncstate import Conflict, MutationLog, SyncBatch
from models.transfers import Transfer

# Referrals, transfers and consent overrides are no synced record, and an alert's child is optional, but
# all hold a child's personal values (an alert its resolution note, the others their reasons): erased
# with the rest.
CHILD_RECORDS = (Consent, StageTransition, Assessment, Service, Followup, Alert, Referral, Transfer,
                 ConsentOverride)
# The result keys a batch replay needs; messages and field errors may quote what the device sent.
KEPT_RESULT_KEYS = ("mutation_id", "status", "version", "code")


def erased_columns(model) -> list[str]:
    """The columns retention empties: whatever the metadata marks personal or restricted."""
    names = fields_of(model, PERSONAL, RESTRICTED)
    for name in names:
        if not model.__table__.c[name].nullable:  # caught at import, not half-way through a run
            raise RuntimeError(f"{model.__tablename__}.{name} is personal but NOT NULL: retention cannot erase it")
    return names


ERASED = {model: erased_columns(model) for model in (Child, *CHILD_RECORDS)}


def cutoff(today: date, days: int) -> date:
    return today - timedelta(days=days)


def due_query(today: date, days: int):
    """Children whose retention period has run out: closed (``stage_since`` is the closure date) or
    soft-deleted that long ago, and not de-identified yet. In case-code order, so runs are repeatable."""
    last = cutoff(today, days)
    deleted_before = datetime.combine(last, time.min, tzinfo=UTC)
    return (select(Child.id, Child.case_code)
            .where(Child.deidentified_at.is_(None),
                   or_(and_(Child.stage == "closed", Child.stage_since <= last),
                       Child.deleted_at <= deleted_before))
            .order_by(Child.case_code))


def count_due(today: date, days: int) -> int:
    return db.session.execute(select(func.count()).select_from(due_query(today, days).subquery())).scalar_one()


@dataclass
class BatchCounts:
    children: int = 0
    records: int = 0
    history: int = 0
    conflicts: int = 0
    mutations: int = 0
    batches_rewritten: int = 0
    scope_removals: int = 0

    def add(self, other: "BatchCounts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def deidentify(child_ids: list, now: datetime | None = None) -> BatchCounts:
    """Erase the personal and restricted values of these children and everything about them.
    Flushes, never commits. Children already de-identified are left alone."""
    now = now or utcnow()
    session = db.session
    session.flush()
    C = Child.__table__
    children = session.execute(select(C.c.id, C.c.version, C.c.caseworker_id).where(
        C.c.id.in_(child_ids), C.c.deidentified_at.is_(None))).all()
    counts = BatchCounts(children=len(children))
    if not children:
        return counts
    ids = [row.id for row in children]
    leaving = [row for row in children if row.caseworker_id is not None]

    # The child rows: each its own seq (taken in one go), version + 1, the erased columns empty.
    first = allocate_seq(session, len(children) + len(leaving))
    session.execute(
        update(C).where(C.c.id == bindparam("b_id"))
        .values(version=C.c.version + 1, seq=bindparam("b_seq"), updated_at=now, deidentified_at=now,
                **{C.c[name].name: None for name in ERASED[Child]}),
        [{"b_id": row.id, "b_seq": first + offset} for offset, row in enumerate(children)])
    if leaving:
        session.execute(insert(ScopeChange.__table__), [
            {"seq": first + len(children) + offset, "user_id": row.caseworker_id, "child_id": row.id,
             "kind": "remove"} for offset, row in enumerate(leaving)])

    # Its records: the erased columns emptied in place. Their versions do not move: they leave every
    # device with the child, and no device can push to a child out of every caseload.
    record_ids = []
    for model in CHILD_RECORDS:
        table = model.__table__
        record_ids.append(select(table.c.id).where(table.c.child_id.in_(ids)))
        if ERASED[model]:
            counts.records += session.execute(update(table).where(table.c.child_id.in_(ids)).values(
                **{table.c[name].name: None for name in ERASED[model]})).rowcount

    # Values kept about it elsewhere: history, conflicts, the raw mutation log and its answers.
    H = RecordHistory.__table__
    counts.history = session.execute(update(H).where(H.c.child_id.in_(ids)).values(values={})).rowcount
    delete_tokens(ids)  # the blind index of its names, village and aliases
    erase_attachments(ids)  # the files, their names, hashes and keys
    X = ChildExtraField.__table__
    session.execute(X.delete().where(X.c.child_id.in_(ids)))
    R = OpenRosaSubmission.__table__  # its hash stays: a phone's retry is still known as a retry
    session.execute(update(R).where(R.c.child_id.in_(ids)).values(xml="", media=[]))
    K = Conflict.__table__
    counts.conflicts = session.execute(update(K).where(K.c.child_id.in_(ids)).values(
        base_values={}, server_values={}, device_values={}, resolution=None)).rowcount
    about_it = union_all(select(C.c.id).where(C.c.id.in_(ids)), *record_ids).subquery()
    M = MutationLog.__table__
    mutations = select(M.c.mutation_id, M.c.batch_id).where(M.c.record_id.in_(select(about_it.c[0])))
    logged = session.execute(mutations).all()
    counts.mutations = len(logged)
    if logged:
        counts.batches_rewritten = _strip_batch_results(logged)
        session.execute(update(M).where(M.c.record_id.in_(select(about_it.c[0]))).values(
            payload={}, result=null()))

    # One history row per child: the fields erased, no value.
    session.execute(insert(H), [
        {"entity": "child", "record_id": row.id, "version": row.version + 1, "child_id": row.id,
         "fields": sorted(ERASED[Child]), "values": {}, "actor_id": None, "device_id": None, "source": "system",
         "at": now} for row in children])
    counts.scope_removals = len(leaving)
    return counts


def _strip_batch_results(logged) -> int:
    """Drop the messages answered to these mutations from their batches' stored results (kept for
    replays), keeping what a replay needs. One read and one executemany for the batches concerned."""
    mutation_ids = {str(row.mutation_id) for row in logged}
    B = SyncBatch.__table__
    batches = db.session.execute(select(B.c.batch_id, B.c.results).where(
        B.c.batch_id.in_({row.batch_id for row in logged}))).all()
    rewritten = []
    for batch_id, results in batches:
        new = [({k: v for k, v in r.items() if k in KEPT_RESULT_KEYS} if r.get("mutation_id") in mutation_ids
                else r) for r in results or []]
        if new != results:
            rewritten.append({"b_id": batch_id, "b_results": new})
    if rewritten:
        db.session.execute(update(B).where(B.c.batch_id == bindparam("b_id"))
                           .values(results=bindparam("b_results", type_=B.c.results.type)), rewritten)
    return len(rewritten)


def erase_late_mutations() -> int:
    """A phone that was offline may push to a child after its de-identification: the push is refused
    (out of scope), but the mutation log kept it verbatim first. Erase those. Driven from the rejected
    mutations not erased yet (few), matched to de-identified children and their records by id.
    Flushes, never commits."""
    C, M = Child.__table__, MutationLog.__table__
    gone = select(C.c.id).where(C.c.deidentified_at.is_not(None))
    theirs = [select(m.__table__.c.id).where(m.__table__.c.child_id.in_(gone)) for m in CHILD_RECORDS]
    return db.session.execute(
        update(M).where(M.c.status == "rejected", M.c.result.is_not(None),
                        M.c.record_id.in_(union_all(gone, *theirs)))
        .values(payload={}, result=null())).rowcount


@dataclass
class RunResult:
    due: int
    case_codes: list[str] = field(default_factory=list)
    counts: BatchCounts = field(default_factory=BatchCounts)
    dry_run: bool = False
    late_mutations: int = 0


def run(today: date, days: int, *, batch_size: int = 200, dry_run: bool = False,
        progress: Callable[[int], None] | None = None, actor=None) -> RunResult:
    """De-identify every child due, ``batch_size`` at a time, committing and auditing each batch
    (case codes and counts, never a name). ``dry_run`` reads what is due and changes nothing.
    ``progress`` is called with the number of children each batch finished."""
    due = count_due(today, days)
    result = RunResult(due=due, dry_run=dry_run)
    if dry_run:
        result.case_codes = list(db.session.execute(due_query(today, days).with_only_columns(
            Child.case_code)).scalars())
        db.session.rollback()
        return result
    while True:
        batch = db.session.execute(due_query(today, days).limit(batch_size)).all()
        if not batch:
            break
        counts = deidentify([row.id for row in batch])
        codes = [row.case_code for row in batch]
        # The batch's children go in audit_event_child (their count in details["children"]).
        audit("retention_deidentified", actor=actor, target=f"{len(codes)} children",
              children=[row.id for row in batch], case_codes=codes, retention_days=days,
              **{k: v for k, v in counts.as_dict().items() if k != "children"})
        db.session.commit()
        result.case_codes += codes
        result.counts.add(counts)
        if progress is not None:
            progress(len(batch))
    result.late_mutations = erase_late_mutations()
    if result.late_mutations:
        audit("retention_late_mutations_erased", actor=actor, mutations=result.late_mutations)
    db.session.commit()
    return result


__all__ = ["ERASED", "BatchCounts", "RunResult", "count_due", "deidentify", "due_query", "erase_late_mutations", "run"]
