"""Merging two registrations of one child (issue 14): a manager confirmed a child ↔ child match and
chose to merge. docs/tracing.md, "Merging duplicates".

One child survives (by default the older registration); the other is *absorbed*:
- every live record of the absorbed child (consents, stage transitions, assessments, services,
  follow-ups, alerts: the synced ones) moves to the survivor through ``models.records.change_record``,
  so each gets a new version, a history row naming the manager, and a new change sequence number
  (devices pulling see upserts). Scheduled follow-ups of the absorbed child are cancelled as they move:
  the survivor's plan is made again after the commit. Other tables that name a child (referrals,
  tracing links, OpenRosa extra fields, and any later table with a ``child_id`` foreign key) are
  found from the metadata and moved in one UPDATE each; a row the survivor already has the same key
  for stays with the absorbed child.
- the child's own fields: the survivor keeps its values; a value only the absorbed child has fills the
  survivor's empty field; a value both have and that differs is kept as a field conflict
  (``models.syncstate.Conflict``: "server" is the survivor's value, "device" the absorbed
  registration's) for a person to resolve field by field on /conflicts. Open conflicts of the absorbed
  child move to the survivor.
- the stage: the survivor keeps its own (a stage is derived from its transitions, never written as a
  field, so it cannot be a field conflict); the absorbed child's transitions join the survivor's
  timeline, and a differing stage is reported to the manager, who moves the survivor if need be.
- the absorbed child is soft-deleted with ``merged_into`` set: never hard-deleted, audit and history
  keep it; its devices receive ``remove`` (sync.pull).

Plain functions; they flush (through the write step), never commit. ``merge_children`` audits
``child.merge``; the caller commits and plans the survivor (models.unit_of_work.commit_and_plan).
"""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import UniqueConstraint, and_, exists, update

from models.access import can_see_child
from models.audit import audit
from models.base import SyncedRecord, db, utcnow
from models.change_set import ChangeSet, new, written
from models.children import Child
from models.errors import ManagerOnly, Problem, RecordDeidentified, RecordDeleted
from models.followups import Followup
from models.matching import MatchCandidate, decide
from models.records import ENTITY_OF, Actor, change_record, json_value
from models.schemas import FIELD_SCHEMAS
from models.sensitivity import RESTRICTED, fields_of
from models.syncstate import Conflict

# Tables naming a child that a merge leaves where they are: the match decisions, the scope changes
# devices were sent, and the name search's tokens (derived from the child; a deleted child is not found).
NOT_MOVED = frozenset({"child", "match_candidate", "scope_change", "child_search_token"})
# The child's fields a merge compares: what a person may edit (the API's names), so a conflict on them
# is resolved through the same schema as any edit.
COMPARED = tuple(FIELD_SCHEMAS["child"]._declared_fields)
RESTRICTED_FIELDS = frozenset(fields_of(Child, RESTRICTED))


@dataclass
class MergeResult:
    survivor: Child
    absorbed: Child
    moved: dict = field(default_factory=dict)  # entity or table -> rows moved
    filled: list = field(default_factory=list)  # survivor fields filled from the absorbed child
    conflict: Conflict | None = None
    absorbed_stage: str | None = None  # set when it differs from the survivor's (kept)


def default_survivor(first: Child, second: Child) -> Child:
    """The older registration (created first; the id breaks a tie)."""
    return min(first, second, key=lambda c: (c.created_at, str(c.id)))


def merge_match(candidate: MatchCandidate, survivor_id, user, *, source: str) -> MergeResult:
    """Confirm (if still pending) a child ↔ child candidate and merge its two children; ``survivor_id``
    None keeps the older registration. A refusal raises after the decision: the caller rolls back."""
    if candidate.kind != "child_child":
        raise Problem("not_a_duplicate", "Only two children can be merged; a tracing request is linked.")
    pair = [db.session.get(Child, candidate.child_id), db.session.get(Child, candidate.other_child_id)]
    if survivor_id is None:
        survivor = default_survivor(*pair)
    else:
        survivor = next((c for c in pair if c.id == survivor_id), None)
        if survivor is None:
            raise Problem("validation_error", "The child kept must be one of the pair.",
                          {"fields": {"survivor": ["Not one of the two children of this match."]}})
    if candidate.status == "pending":
        decide(candidate, "confirm", user)
    return merge_children(survivor, pair[1] if survivor is pair[0] else pair[0], user, source=source)


def _confirmed_pair(a: Child, b: Child) -> bool:
    first, second = sorted((a.id, b.id), key=str)
    return db.session.execute(db.select(MatchCandidate.id).where(
        MatchCandidate.kind == "child_child", MatchCandidate.status == "confirmed",
        MatchCandidate.child_id == first, MatchCandidate.other_child_id == second)).first() is not None


def check_merge(survivor: Child, absorbed: Child, user) -> None:
    """Raise what a merge refuses, before anything changes."""
    if getattr(user, "role", None) != "manager":
        raise ManagerOnly("Only a manager merges two registrations.")
    if survivor.id == absorbed.id:
        raise Problem("same_child", "A child cannot be merged into itself.")
    for child in (survivor, absorbed):
        if child.merged_into is not None:
            raise Problem("already_merged", f"Case {child.case_code} was already merged into another case.",
                          {"merged_into": str(child.merged_into)})
        if child.deleted_at is not None:
            raise RecordDeleted(f"Case {child.case_code} was deleted; it cannot be merged.")
        if child.deidentified_at is not None:
            raise RecordDeidentified(f"Case {child.case_code} was de-identified; it cannot be merged.")
        if not can_see_child(user, child):
            raise Problem("out_of_scope", "No such child in your reach.")
    if not _confirmed_pair(survivor, absorbed):
        raise Problem("not_confirmed", "These two children were not confirmed as duplicates; confirm their "
                      "match on the review queue first.")


def merge_children(survivor: Child, absorbed: Child, user, *, source: str = "web") -> MergeResult:
    """Move everything of ``absorbed`` to ``survivor`` (see the module docstring). Checked first."""
    check_merge(survivor, absorbed, user)
    db.session.flush()  # the core UPDATEs below read what the session holds
    actor = Actor(user=user, source=source)
    result = MergeResult(survivor, absorbed,
                         absorbed_stage=absorbed.stage if absorbed.stage != survivor.stage else None)
    open_conflicts = db.session.execute(db.select(Conflict.id).where(
        Conflict.child_id == absorbed.id, Conflict.status == "open").limit(1)).first() is not None
    with written() as changes:
        for model in synced_child_models():
            result.moved.update(_move_synced(changes, model, absorbed, survivor, actor))
        result.filled, result.conflict = absorb_values(changes, survivor, _values(absorbed), actor,
                                                       review=open_conflicts, conflict_by=user)
        change_record(changes, absorbed, {"merged_into": survivor.id, "deleted_at": utcnow()}, actor)
    result.moved.update(_move_other_tables(absorbed.id, survivor.id))
    _dismiss_pending(absorbed, user)
    audit("child.merge", actor=user, child_id=survivor.id, target=absorbed.id, children=[survivor.id, absorbed.id],
          moved=sum(result.moved.values()), conflicting_fields=len(result.conflict.fields) if result.conflict else 0)
    return result


def synced_child_models() -> list:
    """The synced models whose rows belong to a child, found from the ``child_id`` foreign keys."""
    return [mapper.class_ for mapper in db.Model.registry.mappers
            if issubclass(mapper.class_, SyncedRecord) and mapper.class_ is not Child
            and _child_key(mapper.class_.__table__) is not None]


def _child_key(table):
    column = table.c.get("child_id")
    if column is None or not any(fk.column.table.name == "child" for fk in column.foreign_keys):
        return None
    return column


def _move_synced(changes: ChangeSet, model, absorbed: Child, survivor: Child, actor: Actor) -> dict:
    records = db.session.execute(db.select(model).where(
        model.child_id == absorbed.id, model.deleted_at.is_(None))).scalars().all()
    for record in records:
        values = {"child_id": survivor.id}
        if isinstance(record, Followup) and record.status == "scheduled":
            values["status"] = "cancelled"  # the survivor's own plan is made again after the commit
        change_record(changes, record, values, actor)
    return {ENTITY_OF.get(model, model.__tablename__): len(records)} if records else {}


def _move_other_tables(absorbed_id, survivor_id) -> dict:
    """Every other table with a ``child_id`` foreign key (not synced, not versioned): one UPDATE each.
    A row whose other key columns the survivor already holds (a tracing link to the same request, an
    answer to the same OpenRosa question) stays with the absorbed child."""
    moved = {}
    for table in db.metadata.sorted_tables:
        column = _child_key(table)
        if column is None or table.name in NOT_MOVED or "seq" in table.c:
            continue
        keys = [[c for c in key if c.name != "child_id"] for key in _unique_keys(table)
                if "child_id" in {c.name for c in key}]
        clashes = []
        for key in keys:
            other = table.alias()
            clashes.append(~exists().where(other.c.child_id == survivor_id,
                                           *[other.c[c.name] == c for c in key]))
        count = db.session.execute(update(table).where(and_(column == absorbed_id, *clashes))
                                   .values(child_id=survivor_id)).rowcount
        if count:
            moved[table.name] = count
    # A conflict about the absorbed child itself is now about the survivor: resolving it writes the survivor.
    db.session.execute(update(Conflict).where(Conflict.entity == "child", Conflict.record_id == absorbed_id)
                       .values(record_id=survivor_id))
    return moved


def _unique_keys(table) -> list:
    keys = [list(table.primary_key.columns)]
    return keys + [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]


def _dismiss_pending(absorbed: Child, user) -> None:
    """Pending pairs of the absorbed child would propose a case that no longer exists: the survivor is
    matched again by the next sweep (its version changed)."""
    pending = db.session.execute(db.select(MatchCandidate).where(
        MatchCandidate.status == "pending",
        (MatchCandidate.child_id == absorbed.id) | (MatchCandidate.other_child_id == absorbed.id))).scalars().all()
    for candidate in pending:
        decide(candidate, "dismiss", user)


def _values(child: Child) -> dict:
    """The child's editable fields under the API's names (``caseworker``: a username)."""
    out = {name: getattr(child, name) for name in COMPARED if name != "caseworker"}
    out["caseworker"] = child.caseworker.username if child.caseworker else None
    return out


def _empty(value) -> bool:
    return value is None or value == "" or value is False


def absorb_values(changes: ChangeSet, survivor: Child, values: dict, actor: Actor, *, review: bool = False,
                  conflict_by=None, device=None, mutation_id=None) -> tuple[list, Conflict | None]:
    """Fold another registration's (or a stale device's) field values into the survivor: a value the
    survivor lacks fills it, a differing one is kept as a conflict. Returns (filled names, conflict)."""
    current = _values(survivor)
    # From a device, a restricted field the survivor holds clashes whatever its value, as in a sync
    # merge (sync/push.py): "applied" for the stored value would let a device test guesses at it.
    blind = RESTRICTED_FIELDS if device is not None else frozenset()
    fill, clashing = {}, {}
    for name, value in values.items():
        if name not in current or _empty(value):
            continue
        if _empty(current[name]):
            fill[name] = value
        elif name in blind or json_value(value) != json_value(current[name]):
            clashing[name] = value
    if "date_of_birth" in fill and "birth_year" in clashing:
        clashing["date_of_birth"] = fill.pop("date_of_birth")  # it would overwrite the survivor's year
    conflict = None
    if clashing:
        names = sorted(clashing)
        conflict = new(Conflict, id=uuid.uuid4(), child_id=survivor.id, entity="child", record_id=survivor.id,
                       mutation_id=mutation_id, device_id=getattr(device, "id", None),
                       user_id=getattr(conflict_by, "id", None), base_version=survivor.version,
                       server_version=survivor.version, fields=names, base_values={k: None for k in names},
                       server_values={k: json_value(current[k]) for k in names},
                       device_values={k: json_value(clashing[k]) for k in names})
    write = {**fill, **({"needs_review": True} if conflict or review else {})}
    if write:
        change_record(changes, survivor, write, actor)  # its refusals first: then nothing is decided
    if conflict is not None:
        changes.rows.append(conflict)
    return sorted(fill), conflict
