"""Receiving one OpenRosa submission: log it as it came, then apply it through sync push.

The order is the sync log's: the raw submission (its XML, encrypted, and its media's names and hashes)
is committed first, so nothing a phone sent is lost whatever happens next; then its mutations go
through ``sync.push.ingest`` in one transaction, all or nothing. A submission one of whose records is
refused writes none of them (a registration without its consents would be half a case): the phone is
told why, and the log row says ``rejected`` until the phone sends a corrected form.
"""

import hashlib
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.exc import IntegrityError

from models.base import db, utcnow
from models.errors import Problem
from models.openrosa import OpenRosaSubmission, keep_extra_fields
from server.errors import PROBLEM_STATUS, status_of
from server.openrosa.catalogue import Form, forms
from server.openrosa.encrypted import decrypt_submission
from server.openrosa.errors import OpenRosaError
from server.openrosa.mapping import answers, child_of, derived_id, extra_answers, plan
from server.openrosa.media import describe_part
from server.openrosa.xml import BadXML, child, parse, text_at
from sync.envelope import load_envelope
from sync.push import ingest


@dataclass
class Received:
    message: str
    child_ids: set
    instance_id: str


def read_submission(xml: bytes) -> tuple[Form, object, str, str | None]:
    """The form, the instance's root, its instanceID and deprecatedID; OpenRosaError if unusable."""
    try:
        xml.decode()
        data = parse(xml)
    except UnicodeDecodeError:
        raise OpenRosaError(400, "Send the form as UTF-8.") from None
    except BadXML as exc:
        raise OpenRosaError(400, str(exc)) from None
    form_id = data.get("id")
    form = forms().get(form_id or "")
    if form is None:
        raise OpenRosaError(404, f"This server has no form '{form_id}'. Get blank forms again.")
    meta = child(data, "meta")
    instance_id = text_at(meta, "instanceID")
    if not instance_id or len(instance_id) > 80:
        raise OpenRosaError(400, "The submission has no meta/instanceID (or one longer than 80 characters).")
    deprecated = text_at(meta, "deprecatedID")
    return form, data, instance_id, deprecated


def receive(xml: bytes, parts: list, device, *, today, rules) -> Received:
    """Log and apply one post; ``parts`` are its files other than the XML (media, or the encrypted XML)."""
    form, data, instance_id, deprecated_id = read_submission(xml)
    if data.get("encrypted") == "yes":
        xml = _decrypted(form, data, parts)
        form, data, instance_id, deprecated_id = read_submission(xml)
        media = []
    elif form.encrypted:
        raise OpenRosaError(400, "This form must arrive encrypted. Get blank forms again, fill it and send it.")
    else:
        media = [describe_part(part) for part in parts]
    sha = hashlib.sha256(xml).hexdigest()
    row = db.session.get(OpenRosaSubmission, instance_id)
    if row is not None and row.device_id != device.id:
        raise OpenRosaError(409, "Another device already sent a form with this instanceID.")
    if row is not None and row.status == "applied":
        if row.xml_sha256 != sha:
            raise OpenRosaError(409, "A different form with the same instanceID was already received. To "
                                     "change it, edit the sent form in the app.")
        row.media = _merged(row.media, media)  # the next part of a submission split over several posts
        db.session.commit()
        return Received("Received.", set(), instance_id)
    previous = _replaced(deprecated_id, form, device) if deprecated_id else None
    _log(row, xml, sha, media, form, data, device, instance_id, deprecated_id, previous)
    return _apply(form, data, device, instance_id, sha, previous, today=today, rules=rules)


def _log(row, xml: bytes, sha: str, media: list, form: Form, data, device, instance_id: str, deprecated_id,
         previous) -> None:
    """Commit the submission as it came, before anything of it is applied."""
    if row is None:
        row = OpenRosaSubmission(instance_id=instance_id, device_id=device.id)
        db.session.add(row)
    row.form_id, row.form_version, row.deprecated_id = form.form_id, data.get("version"), deprecated_id
    row.root_id = previous.root_id if previous else instance_id
    row.xml, row.xml_sha256, row.media = xml.decode(), sha, _merged(row.media or [], media)
    row.status, row.received_at, row.outcome = "received", utcnow(), None
    try:
        db.session.commit()
    except IntegrityError:  # the same form, sent twice at once: the other post is applying it
        db.session.rollback()
        raise OpenRosaError(503, "This form is being received right now. Send it again in a minute.",
                            {"Retry-After": "30"}) from None


def _apply(form: Form, data, device, instance_id: str, sha: str, previous, *, today, rules) -> Received:
    """Its records through sync push and its extra answers with the child, all or none of them."""
    root_id = previous.root_id if previous else instance_id
    child_id = None
    try:
        child_id = child_of(form, data, device, root_id)
        extras = extra_answers(form, data)
        planned = plan(form, data, child_id=child_id, instance_id=instance_id, root_id=root_id,
                       previous=_previous_state(previous, form) if previous else None)
        # A registration whose child group is empty has no child for extra answers to go with.
        if not planned and not previous and not (extras and form.picks_child):
            raise Problem("validation_error", "The form holds no answer to record.")
        mutations = [p.mutation for p in planned]
        envelope = load_envelope({"protocol": 1, "batch_id": str(derived_id(instance_id, "batch", sha)),
                                  "mutations": mutations}, len(mutations))
        outcome = ingest(envelope, mutations, device, today=today, rules=rules)
    except Problem as problem:
        _refuse(instance_id, child_id, {"code": problem.code, "message": problem.message})
        raise OpenRosaError(status_of(problem), problem.message) from None
    refused = [r for r in outcome.results if r["status"] == "rejected"]
    if refused:
        _refuse(instance_id, child_id, {"results": outcome.results})
        raise OpenRosaError(PROBLEM_STATUS.get(refused[0]["code"], 422), _words(refused[0]))
    records = {p.group: {"entity": p.mutation["entity"], "id": p.mutation["id"], "version": r.get("version")}
               for p, r in zip(planned, outcome.results, strict=True)}
    if previous is not None:  # the records of groups the edit did not change are still those records
        records = {**previous.outcome["records"], **records}
    db.session.flush()  # a registration's child exists before its extra answers point at it
    keep_extra_fields(child_id, form.form_id, instance_id, extras, replaces=previous.instance_id if previous else None)
    row = db.session.get(OpenRosaSubmission, instance_id)
    row.status, row.child_id = "applied", child_id
    row.outcome = {"results": outcome.results, "records": records}
    db.session.commit()
    conflicts = sum(1 for r in outcome.results if r["status"] == "conflict")
    message = ("Received. Some answers differ from changes made on the web meanwhile: a manager will "
               "choose which to keep." if conflicts else "Received.")
    return Received(message, outcome.child_ids, instance_id)


def _decrypted(form: Form, manifest, parts: list) -> bytes:
    private_key = current_app.extensions.get("odk_private_key")
    if not form.encrypted or private_key is None:
        raise OpenRosaError(400, "This server does not take encrypted copies of this form.")
    return decrypt_submission(manifest, {part.filename: part.read() for part in parts}, private_key)


def _replaced(deprecated_id: str, form: Form, device) -> OpenRosaSubmission:
    previous = db.session.get(OpenRosaSubmission, deprecated_id)
    if previous is None or previous.status != "applied" or previous.device_id != device.id:
        raise OpenRosaError(409, "This is an edit of a form this server did not record from this phone; "
                                 "send it as a new form.")
    if not previous.xml:  # erased with the child's identity (models/retention.py)
        raise OpenRosaError(409, "The form this edits is no longer kept; the case was closed and de-identified.")
    if previous.form_id != form.form_id:
        raise OpenRosaError(409, "An edit must be of the same form as the one it replaces.")
    return previous


def _previous_state(previous: OpenRosaSubmission, form: Form) -> dict:
    return {"answers": answers(form, parse(previous.xml.encode())), "records": previous.outcome["records"]}


def _refuse(instance_id: str, child_id, outcome: dict) -> None:
    db.session.rollback()
    row = db.session.get(OpenRosaSubmission, instance_id)
    row.status, row.child_id, row.outcome = "rejected", child_id, outcome
    db.session.commit()


def _words(result: dict) -> str:
    """A refused record's message as the phone shows it: the reason, then each field's problem."""
    fields = (result.get("errors") or result.get("details", {}).get("fields") or {})
    parts = [result.get("message") or "The form was refused."]
    parts += [f"{name}: {' '.join(map(str, problems)) if isinstance(problems, list) else problems}"
              for name, problems in fields.items()]
    return " ".join(parts)


def _merged(known: list, new: list) -> list:
    by_name = {m["name"]: m for m in known}
    by_name.update({m["name"]: m for m in new})
    return sorted(by_name.values(), key=lambda m: m["name"])
