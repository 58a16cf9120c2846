"""A pure-Python reference model of the push rules of docs/sync-protocol.md ("Server: how a batch is
applied"), for the property tests in tests/test_push_properties.py.

It knows children, consents and stage transitions of a few ids, kept as plain dicts, and answers a
batch the way the protocol says the server must: batch replay, duplicates, parent_rejected,
validation, scope (before "deleted", so ids do not leak), deletions, base versions, the field merge
and conflicts, the lifecycle's allowed moves. It is written from the document, not from sync/push.py:
where the two disagree the property test fails and someone decides which one is wrong.
"""

from dataclasses import dataclass, field

from models.lifecycle import MANAGER_ONLY, allowed_targets

NOT_APPLIED = ("rejected", "duplicate")


@dataclass
class Rec:
    entity: str
    owner: str  # the caseworker whose caseload holds it (a consent: its child's at creation)
    values: dict  # the fields the model follows
    first: dict  # the values of version 1 (what a create for the same id is compared with)
    version: int = 1
    deleted: bool = False
    # (version, names changed, values written) per version, as record_history holds them
    history: list = field(default_factory=list)

    def write(self, changes: dict) -> bool:
        """Apply the values that differ; one new version if any did (an edit that changes nothing
        keeps the version)."""
        changed = {k: v for k, v in changes.items() if self.values.get(k) != v}
        if not changed:
            return False
        self.values.update(changed)
        self.version += 1
        self.history.append((self.version, frozenset(changed), dict(changed)))
        return True


@dataclass
class Conflict:
    entity: str
    record_id: str
    child_id: str
    fields: tuple
    base_values: dict
    server_values: dict
    device_values: dict
    base_version: int
    server_version: int


@dataclass
class PushModel:
    """The server's state as the protocol describes it, and its answer to each batch."""

    records: dict = field(default_factory=dict)  # (entity, id) -> Rec
    seen: dict = field(default_factory=dict)  # mutation_id -> first result
    batches: dict = field(default_factory=dict)  # batch_id -> (device, results)
    conflicts: list = field(default_factory=list)

    # --- the batch -------------------------------------------------------------------------------

    def push(self, device: str, username: str, envelope: dict) -> tuple[int, list | str]:
        """(HTTP status, results) for a 200, (status, error code) otherwise. A batch id is bound to the
        device that sent it first."""
        batch_id = envelope["batch_id"]
        if batch_id in self.batches:
            owner, results = self.batches[batch_id]
            return (200, results) if owner == device else (409, "id_conflict")
        rejected_creates: set = set()
        results, in_batch = [], {}
        for m in envelope["mutations"]:
            mid = m["mutation_id"]
            first = self.seen.get(mid) or in_batch.get(mid)
            if first is not None:
                results.append(_duplicate(mid, first))
                continue
            outcome = self._apply(username, m, rejected_creates)
            if outcome["status"] == "rejected" and m["op"] == "create":
                rejected_creates.add((m["entity"], m["id"]))
            result = {"mutation_id": mid, **outcome}
            in_batch[mid] = result
            results.append(result)
        self.seen.update(in_batch)
        self.batches[batch_id] = (device, results)
        return 200, results

    def delete(self, entity: str, record_id: str) -> bool:
        """A manager deletes a record on the web between two batches."""
        rec = self.records.get((entity, record_id))
        if rec is None or rec.deleted:
            return False
        rec.deleted = True
        rec.version += 1
        rec.history.append((rec.version, frozenset({"deleted_at"}), {}))
        return True

    # --- one mutation ----------------------------------------------------------------------------

    def _apply(self, user: str, m: dict, rejected_creates: set) -> dict:
        entity, op, rid, fields = m["entity"], m["op"], m["id"], m["fields"]
        if entity == "stage_transition" and op == "update":
            return _rejected("validation_error")
        existing = self.records.get((entity, rid))
        if entity == "child":
            child_id = rid
        elif existing is not None:
            child_id = existing.values["child_id"]
        else:
            child_id = fields.get("child_id")
        if entity != "child" and ("child", child_id) in rejected_creates:
            return _rejected("parent_rejected")
        if op == "update" and existing is None and (entity, rid) in rejected_creates:
            return _rejected("parent_rejected")
        if _invalid(entity, fields):
            return _rejected("validation_error")
        if op == "create":
            return self._create(user, entity, rid, fields, existing, child_id)
        return self._update(user, m, existing, child_id)

    def _scope(self, user: str, child_id) -> str | None:
        """The rejection code for writing under this child, or None when it is the device's to write."""
        child = self.records.get(("child", child_id))
        if child is None or child.owner != user:
            return "out_of_scope"
        if child.deleted:
            return "record_deleted"
        return None

    def _create(self, user, entity, rid, fields, existing, child_id) -> dict:
        if existing is not None:
            if code := self._scope(user, child_id):
                return _rejected(code)
            same = all(existing.first.get(k) == v for k, v in _compared(entity, fields, user).items())
            return {"status": "duplicate", "version": existing.version} if same else _rejected("id_conflict")
        if entity == "child":
            if fields.get("caseworker", user) != user:
                return _rejected("out_of_scope")
            values = {"risk_level": fields.get("risk_level"), "district": fields["district"], "stage": "identified",
                      "stage_since": fields["identified_on"], "needs_review": False, **_compared(entity, fields, user)}
            self._add(Rec("child", user, values, dict(values)), rid)
            return {"status": "applied", "version": 1}
        if code := self._scope(user, child_id):
            return _rejected(code)
        child = self.records[("child", child_id)]
        if entity == "stage_transition":
            code = _transition_refusal(child.values["stage"], fields)
            if code:
                return _rejected(code)
            self._add(Rec(entity, user, dict(fields), dict(fields)), rid)
            child.write({"stage": fields["to_stage"], "stage_since": fields["occurred_on"]})
            return {"status": "applied", "version": 1}
        values = _compared(entity, fields, user)
        self._add(Rec(entity, user, dict(values), dict(values)), rid)
        return {"status": "applied", "version": 1}

    def _add(self, rec: Rec, rid: str) -> None:
        rec.history.append((1, frozenset(rec.values), dict(rec.values)))
        self.records[(rec.entity, rid)] = rec

    def _update(self, user, m, rec, child_id) -> dict:
        if rec is None:
            return _rejected("out_of_scope")
        if code := self._scope(user, child_id):
            return _rejected(code)
        if rec.deleted:
            return _rejected("record_deleted")
        base, fields = m["base_version"], m["fields"]
        if base > rec.version:
            return _rejected("validation_error")
        if base == rec.version:
            rec.write(fields)
            return {"status": "applied", "version": rec.version}
        changed_since = {name for version, names, _ in rec.history if version > base for name in names}
        clashing = {k: v for k, v in fields.items() if k in changed_since and rec.values.get(k) != v}
        applying = {k: v for k, v in fields.items() if k not in clashing}
        if not clashing:
            rec.write(applying)
            return {"status": "applied", "version": rec.version}
        names = tuple(sorted(clashing))
        base_values = {}
        for version, _names, written in rec.history:
            if version <= base:
                base_values.update({k: written[k] for k in names if k in written})
        conflict = Conflict(m["entity"], m["id"], child_id, names, {k: base_values.get(k) for k in names},
                            {k: rec.values.get(k) for k in names}, dict(clashing), base, rec.version)
        self.conflicts.append(conflict)
        child = self.records[("child", child_id)]
        if rec is child:
            rec.write({**applying, "needs_review": True})
        else:
            rec.write(applying)
            child.write({"needs_review": True})
        return {"status": "conflict", "version": rec.version, "conflicting_fields": list(names)}


# --- the rules as plain functions --------------------------------------------------------------------

def _rejected(code: str) -> dict:
    return {"status": "rejected", "code": code}


def _duplicate(mid: str, first: dict) -> dict:
    result = {"mutation_id": mid, "status": "duplicate", "version": first.get("version"),
              "original_status": first["status"]}
    if first.get("code"):
        result["code"] = first["code"]
    return result


def _invalid(entity: str, fields: dict) -> bool:
    """The values the property test sends that the entity's schema refuses."""
    return fields.get("sex") == "robot" or fields.get("given_by") == "stranger"


def _compared(entity: str, fields: dict, user: str) -> dict:
    """What a create's content is compared with: the fields sent, the caseworker being the device's own
    unless another one is named."""
    values = {k: v for k, v in fields.items() if k != "caseworker"}
    if entity == "child":
        values["caseworker"] = fields.get("caseworker", user)
    return values


def _transition_refusal(stage: str, fields: dict) -> str | None:
    to_stage = fields["to_stage"]
    if to_stage not in allowed_targets(stage):
        return "invalid_transition"
    if (stage, to_stage) in MANAGER_ONLY:  # a device acts for a caseworker, never a manager
        return "manager_only"
    if (stage, to_stage) == ("tracing", "reunified"):  # no verified family link here (models/tracing.py)
        return "family_not_verified"
    # The test sends a reason and no closure reason: only a move to "closed" lacks a field.
    if to_stage == "closed":
        return "validation_error"
    return None
