"""Deciding a pushed referral, tracing request or trace (issues 13 and 14), inside sync.push's pipeline.

Each function decides one mutation in memory on the batch's ``ChangeSet``, or raises a ``Problem``
before changing anything, like sync.push's own decisions; the rules are the ones the web and the API
apply (models.referrals, models.tracing), so a device can do nothing there that a caseworker cannot.

- **referral**: a create proposes a referral for a child of the device's caseload, after the consent
  gate (a device cannot override: ``consent_required``); an update is one lifecycle step
  (``{"status": ...}``), checked against the referral's current status whatever the base version:
  a step the status does not allow is ``invalid_transition``, a step the referral already took is
  applied without change (the device's wish holds, as for acknowledging an alert).
- **tracing_request**: created and edited by the caseworker who follows it (the API's rule: managers and
  caseworkers, a caseworker only into their own caseload). A stale edit merges the fields nobody else
  changed; a field both changed is refused as ``edit_conflict``: a conflict record and its review
  page belong to a child, and a request has none (the device's values stay in the mutation log).
- **trace**: create only, on a request the device's caseworker follows.
"""

import uuid

from marshmallow import ValidationError
from sqlalchemy import or_

from models.base import db, utcnow
from models.care import Consent
from models.change_set import new
from models.consent_gates import ConsentRequired
from models.errors import Problem
from models.records import add_record, change_record, check_record_create, json_value
from models.referrals import ReferralStep, _referral_problems, check_step
from models.schemas import ReferralStepFields
from models.tracing import TracingRequest, change_request, trace_problems
from sync.push import (
    NOT_IN_CASELOAD,
    _Batch,
    _in_scope_child,
    _loaded,
    _own_caseworker,
    _restricted,
    _same_content,
    _unused_id,
    _uuid_or_none,
)


def _refusing_parent(mutation, state: _Batch, parent) -> None:
    if parent in state.rejected_creates:
        raise Problem("parent_rejected", "The record this one belongs to was rejected in this batch; "
                      "fix it first, then send this record again.")
    key = (mutation["entity"], mutation["id"])
    if mutation["op"] == "update" and key not in state.known and key in state.rejected_creates:
        raise Problem("parent_rejected", "The create of this record was rejected in this batch.")


def _duplicate_or_clash(existing, entity, data, state: _Batch) -> dict:
    if _same_content(existing, entity, data, state):
        return {"status": "duplicate", "version": existing.version}
    raise Problem("id_conflict", f"A {entity} with this id already exists with other content; "
                  "create the record with a new id.")


def _live(record, entity: str) -> None:
    if record.deleted_at is not None:
        raise Problem("record_deleted", f"This {entity} was deleted on the server; it can no longer be "
                      "changed. Drop the local edit.")


def _stale_base(mutation, record) -> None:
    base = mutation["base_version"]
    if base > record.version:
        raise Problem("validation_error", f"base_version {base} is ahead of the server's version "
                      f"{record.version}; pull, then edit again.",
                      {"fields": {"base_version": [f"The server has version {record.version}."]}})


# Referrals.

def _referral_consent(child_id, state: _Batch) -> None:
    """The ``referral`` consent in force today, counting what this batch already decided about the
    child's consents (not yet written: models.consent_gates reads the database)."""
    today = state.today
    decided = {r.id: r for (entity, _), r in state.known.items() if entity == "consent" and r.child_id == child_id}

    def in_force(c):
        return (c.purpose == "referral" and c.deleted_at is None and c.given_on <= today
                and (c.withdrawn_on is None or c.withdrawn_on > today))

    if any(in_force(c) for c in decided.values()):
        return
    stored = db.select(Consent.id).where(
        Consent.child_id == child_id, Consent.purpose == "referral", Consent.deleted_at.is_(None),
        Consent.given_on <= today, or_(Consent.withdrawn_on.is_(None), Consent.withdrawn_on > today))
    if decided:
        stored = stored.where(Consent.id.not_in(list(decided)))
    if db.session.execute(stored.limit(1)).first() is None:
        raise ConsentRequired("referral")


def _day_of(mutation, state: _Batch):
    """The day a step was taken offline: the device's own day when it recorded it (never after today)."""
    recorded = mutation["recorded_at"]
    return min(recorded.date(), state.today) if recorded is not None else state.today


def _step(state: _Batch, referral_id, status: str, occurred_on) -> None:
    state.changes.rows.append(new(ReferralStep, id=uuid.uuid4(), referral_id=referral_id, status=status,
                                  occurred_on=occurred_on, at=utcnow(), actor_id=state.user.id))


def referral(mutation, state: _Batch) -> dict:
    rid, existing = mutation["id"], state.known.get(("referral", mutation["id"]))
    child_id = existing.child_id if existing is not None else _uuid_or_none(mutation["changes"].get("child_id"))
    _refusing_parent(mutation, state, ("child", child_id))
    if mutation["op"] == "update":
        return _referral_step(mutation, existing, state)
    data = _loaded("referral", False, mutation["changes"])
    if existing is not None:
        _in_scope_child(existing.child_id, state)
        return _duplicate_or_clash(existing, "referral", data, state)
    child = _in_scope_child(data["child_id"], state)
    check_record_create("referral", data, child)
    if problems := _referral_problems(data):
        raise Problem("validation_error", "Some fields are not valid.", {"fields": problems})
    _referral_consent(child.id, state)
    _unused_id(rid, state)
    fields = {**data, "status": "proposed", "created_by_id": state.user.id,
              "provider_name": (data.get("provider_name") or "").strip() or None}
    record = add_record(state.changes, "referral", fields, state.actor, record_id=rid,
                        recorded_at=mutation["recorded_at"])
    _step(state, rid, "proposed", _day_of(mutation, state))
    state.known[("referral", rid)] = record
    state.child_ids.add(child.id)
    return {"status": "applied", "version": record.version}


def _referral_step(mutation, record, state: _Batch) -> dict:
    data = _loaded_with(ReferralStepFields, mutation["changes"])
    if record is None:
        raise Problem("out_of_scope", NOT_IN_CASELOAD)
    child = _in_scope_child(record.child_id, state)
    _live(record, "referral")
    _stale_base(mutation, record)
    to_status = data["status"]
    if to_status == record.status:
        return {"status": "applied", "version": record.version}
    check_step(record, to_status)
    if to_status == "sent" and not record.consent_overridden:
        _referral_consent(child.id, state)
    occurred_on = data.get("occurred_on") or _day_of(mutation, state)
    change_record(state.changes, record, {"status": to_status, **({"sent_on": occurred_on} if to_status == "sent" else {})},
                  state.actor, recorded_at=mutation["recorded_at"])
    _step(state, record.id, to_status, occurred_on)
    state.child_ids.add(child.id)
    return {"status": "applied", "version": record.version}


def _loaded_with(schema_cls, changes: dict) -> dict:
    try:
        return schema_cls().load(changes)
    except ValidationError as exc:
        raise Problem("validation_error", "Some fields are not valid.", {"fields": exc.normalized_messages()}) from None


# Tracing requests and traces.

def _own_request(record, state: _Batch) -> TracingRequest:
    if record is None or record.caseworker_id != state.user.id:
        raise Problem("out_of_scope", "No such tracing request among those you follow.")
    return record


def _own_requests(data: dict, state: _Batch) -> dict:
    return _own_caseworker(data, state, "A device follows only its own caseworker's tracing requests; "
                           "a manager hands a request to someone else on the web.")


def tracing_request(mutation, state: _Batch) -> dict:
    rid, existing = mutation["id"], state.known.get(("tracing_request", mutation["id"]))
    if mutation["op"] == "update":
        _refusing_parent(mutation, state, None)
        return _request_edit(mutation, existing, state)
    data = _own_requests(_loaded("tracing_request", False, mutation["changes"]), state)
    data.pop("status", None)  # a request starts open, as on the API; matching and people move it on
    if existing is not None:
        _own_request(existing, state)
        return _duplicate_or_clash(existing, "tracing_request", data, state)
    _unused_id(rid, state)
    record = add_record(state.changes, "tracing_request", {**data, "caseworker_id": state.user.id}, state.actor,
                        record_id=rid, recorded_at=mutation["recorded_at"])
    state.known[("tracing_request", rid)] = record
    return {"status": "applied", "version": record.version}


def _request_edit(mutation, record, state: _Batch) -> dict:
    data = _own_requests(_loaded("tracing_request", True, mutation["changes"]), state)
    _own_request(record, state)
    _live(record, "tracing request")
    _stale_base(mutation, record)
    base = mutation["base_version"]
    if base < record.version:
        changed_since = {name for row in state.history_of(record.id) if row["version"] > base for name in row["fields"]}
        # A restricted field changed since clashes whatever its value, as in sync.push's merge: an
        # answer that differed for the stored value would let a device test guesses at it.
        clashing = sorted(k for k, v in data.items() if k in changed_since and (
            k in _restricted("tracing_request") or json_value(getattr(record, k)) != json_value(v)))
        if clashing:
            raise Problem("edit_conflict", "Someone changed this tracing request on the server since your "
                          f"last sync ({', '.join(clashing)}); pull, then edit again.", {"fields": {
                              k: ["Changed on the server since your last sync."] for k in clashing}})
    change_request(state.changes, record, data, state.actor, recorded_at=mutation["recorded_at"])
    return {"status": "applied", "version": record.version}


def trace(mutation, state: _Batch) -> dict:
    if mutation["op"] != "create":
        raise Problem("validation_error", "A trace cannot be changed; record a new one.",
                      {"fields": {"op": ["Traces are append-only: use op 'create'."]}})
    rid, existing = mutation["id"], state.known.get(("trace", mutation["id"]))
    request_id = existing.request_id if existing is not None else _uuid_or_none(mutation["changes"].get("request_id"))
    _refusing_parent(mutation, state, ("tracing_request", request_id))
    data = _loaded("trace", False, mutation["changes"])
    parent = state.known.get(("tracing_request", data["request_id"]))
    if parent is None:
        parent = db.session.get(TracingRequest, data["request_id"])
        if parent is not None:
            state.known[("tracing_request", parent.id)] = parent
    _own_request(parent, state)
    if existing is not None:
        return _duplicate_or_clash(existing, "trace", data, state)
    _live(parent, "tracing request")
    if problems := trace_problems(parent, data):
        raise Problem("validation_error", "Some fields are not valid.", {"fields": problems})
    _unused_id(rid, state)
    record = add_record(state.changes, "trace", {**data, "actor_id": state.user.id}, state.actor, record_id=rid,
                        recorded_at=mutation["recorded_at"])
    state.known[("trace", rid)] = record
    return {"status": "applied", "version": record.version}


DECISIONS = {"referral": referral, "tracing_request": tracing_request, "trace": trace}
