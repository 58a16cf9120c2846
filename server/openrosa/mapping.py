"""A submission's answers turned into the mutations of sync push (docs/odk.md, "Mapping rules").

Ids are derived, never random, so a retried submission means the same records: each record's id and
each mutation's id come from the instanceID (for an edit, the first instanceID of its chain) and the
group's name. An edit (``deprecatedID``) sends, per record, only the answers that changed since the
submission it replaces, with that submission's resulting version as its base: a change made on the
web meanwhile is then a conflict for a person to resolve, not silently overwritten.
"""

import uuid
from collections import Counter
from dataclasses import dataclass

from marshmallow import fields as ma

from models.base import db
from models.children import Child
from models.errors import Problem
from models.followups import Followup
from models.schemas import FIELD_SCHEMAS
from server.openrosa.catalogue import Form
from server.openrosa.xml import child, local, text_at
from sync.push import NOT_IN_CASELOAD

# The namespace of every id derived from an instanceID.
ODK_IDS = uuid.UUID("5b0b8e8e-4a58-4d57-9c0e-6f6d6b0a11ce")


def derived_id(instance_id: str, *parts: str) -> uuid.UUID:
    return uuid.uuid5(ODK_IDS, "/".join((instance_id, *parts)))


@dataclass
class Planned:
    group: str
    mutation: dict  # as a device would push it


def answers(form: Form, data) -> dict[str, dict]:
    """Per group with an answer a person gave: {field: value as the model takes it}."""
    out = {}
    for group in form.groups:
        element = child(data, group.name)
        if element is None:
            continue
        values = {local(leaf.tag): (leaf.text or "").strip() for leaf in element}
        values = {k: _typed(group.entity, k, v) for k, v in values.items() if v and k in group.fields}
        if set(values) - group.calculated:
            out[group.name] = values
    return out


def _typed(entity: str, name: str, value: str):
    # A select_multiple answer is space-separated; the model takes a list.
    return value.split() if isinstance(FIELD_SCHEMAS[entity]._declared_fields.get(name), ma.List) else value


def extra_answers(form: Form, data) -> dict[str, str]:
    """The answers outside the record groups (the programme's own questions), by their path in the
    instance; a question answered in several repeats gets its number, ``members[2]/age``."""
    if form.shipped:
        return {}
    skip = {"meta", "case_code", *(group.name for group in form.groups)}
    out = {}

    def walk(element, prefix: str, top: bool) -> None:
        counts, seen = Counter(local(e.tag) for e in element), Counter()
        for node in element:
            name = local(node.tag)
            if top and name in skip:
                continue
            seen[name] += 1
            path = prefix + (f"{name}[{seen[name]}]" if counts[name] > 1 else name)
            if len(node):
                walk(node, path + "/", False)
            elif (node.text or "").strip():
                out[path] = node.text.strip()

    walk(data, "", True)
    too_long = [path for path in out if len(path) > 200]
    if too_long:
        raise Problem("validation_error", f"The question path '{too_long[0][:60]}…' is longer than 200 characters.")
    return out


def plan(form: Form, data, *, child_id: uuid.UUID, instance_id: str, root_id: str,
         previous: dict | None) -> list[Planned]:
    """The mutations of one submission about ``child_id`` (see ``child_of``); none when an edit changed
    no record. ``previous``: for an edit, the replaced submission's answers and records
    ({"answers": {group: values}, "records": {group: {entity, id, version}}})."""
    given = answers(form, data)
    planned = []
    for group in form.groups:
        values = given.get(group.name)
        before = (previous or {}).get("records", {}).get(group.name)
        if before:
            fields = _changed((previous or {}).get("answers", {}).get(group.name, {}), values or {})
            if not fields:
                continue
            if group.entity == "stage_transition":
                raise Problem("validation_error", "A stage move that was sent cannot be changed; record a new one.")
            mutation = _update(group.entity, before["id"], before["version"], fields)
        elif values is None:
            continue
        else:
            mutation = _new(form, group.entity, values, child_id, derived_id(root_id, group.name))
        mutation["mutation_id"] = str(derived_id(instance_id, group.name, "mutation"))
        planned.append(Planned(group.name, mutation))
    return planned


def child_of(form: Form, data, device, root_id: str) -> uuid.UUID:
    """The child a submission is about: the one a registration creates, or the one of its ``case_code``,
    which must be in the device's caseload (as push checks each record; the extra answers need it too)."""
    if not form.picks_child:
        return derived_id(root_id, "child")
    code = (text_at(data, "case_code") or "").upper()
    found = db.session.execute(db.select(Child).where(Child.case_code == code)).scalar_one_or_none()
    if found is None or found.caseworker_id != device.user_id:
        raise Problem("out_of_scope", NOT_IN_CASELOAD)
    if found.deleted_at is not None:
        raise Problem("record_deleted", f"Child {found.case_code} was deleted; it can no longer be changed.")
    return found.id


def _new(form: Form, entity: str, values: dict, child_id, record_id) -> dict:
    if entity == "child":
        if form.picks_child:  # answers about a child of the caseload (the restricted profile)
            return _update("child", child_id, _version(Child, child_id), values)
        return _create("child", child_id, values)
    if entity == "followup" and values.get("kind") == "visit":
        scheduled = _scheduled_visit(child_id)
        if scheduled is not None:  # the visit that was planned, now done
            return _update("followup", scheduled.id, scheduled.version,
                           {k: v for k, v in values.items() if k != "kind"})
        values = {"due_on": values.get("completed_on"), **values}
    return _create(entity, record_id, {**values, "child_id": str(child_id)})


def _create(entity: str, record_id, fields: dict) -> dict:
    return {"entity": entity, "id": str(record_id), "op": "create", "base_version": 0, "fields": fields}


def _update(entity: str, record_id, base_version: int, fields: dict) -> dict:
    return {"entity": entity, "id": str(record_id), "op": "update", "base_version": base_version,
            "fields": fields}


def _changed(before: dict, after: dict) -> dict:
    return {k: after.get(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def _version(model, record_id) -> int:
    # No record: version 1, and push answers that it is not in the caseload.
    return db.session.execute(db.select(model.version).where(model.id == record_id)).scalar() or 1


def _scheduled_visit(child_id):
    return db.session.execute(
        db.select(Followup).where(Followup.child_id == child_id, Followup.kind == "visit",
                                  Followup.status == "scheduled", Followup.deleted_at.is_(None))
        .order_by(Followup.due_on).limit(1)).scalar_one_or_none()
