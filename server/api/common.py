"""What the API views share: the acting user, scoped loading, and If-Match handling."""

import logging

from flask import current_app, g, request

from models import Actor, Child, db
from models.access import can_see_child
from server.errors import ApiError
from server.whole_numbers import whole_number


def api_actor() -> Actor:
    return Actor(user=g.user, source="api")


def not_found(what="record"):
    return ApiError(404, "not_found", f"No {what} with this id.")


def load_child(child_id) -> Child:
    """The child if the current user may see it; 404 otherwise, so ids of others' children don't leak."""
    child = db.session.get(Child, child_id)
    if child is None or not can_see_child(g.user, child):
        raise not_found("child")
    return child


def load_child_record(model, record_id, what):
    record = db.session.get(model, record_id)
    if record is None or record.deleted_at is not None:
        raise not_found(what)
    child = db.session.get(Child, record.child_id)
    if child is None or not can_see_child(g.user, child):
        raise not_found(what)  # the same answer as no such record, so ids of others' records don't leak
    return record


def require_version(record) -> None:
    """Optimistic locking: PATCH and DELETE must name the version they saw (If-Match)."""
    raw = request.headers.get("If-Match")
    if not raw:
        raise ApiError(428, "precondition_required",
                       f"Send 'If-Match: <version>' with the version you last saw (now {record.version}).")
    text = raw.strip().removeprefix("W/").strip('"')
    sent = whole_number(text)
    if sent is None:
        raise ApiError(400, "bad_request", "If-Match must be a record version, a whole number.")
    if sent != record.version:
        raise ApiError(412, "version_mismatch",
                       f"The record changed since version {text}; it is now at version {record.version}. "
                       "Fetch it again and reapply your change.",
                       {"current_version": record.version})


def with_etag(body: dict, status=200):
    return body, status, {"ETag": f'"{body["version"]}"'}


def commit_and_plan(*child_ids) -> None:
    """Commit the request's work, then plan the children it touched (models.unit_of_work)."""
    from models import unit_of_work

    unit_of_work.commit_and_plan(child_ids, today=today(), rules=rules())
    match_after_commit(child_ids=set(child_ids))


def match_after_commit(*, child_ids=(), request_ids=()) -> None:
    """Matching (issue 14) runs on committed state, like follow-up planning, and commits its queue. The
    change it follows is already saved: should matching fail, it is logged (ids only) and the scheduled
    sweep matches these records at its next run, rather than the request answering 500."""
    from models.matching import match_records

    try:
        match_records(child_ids=child_ids, request_ids=request_ids,
                      threshold=current_app.config["MATCH_THRESHOLD"])
        db.session.commit()
    except Exception:
        db.session.rollback()
        logging.getLogger(__name__).exception("matching failed for %d children and %d requests; the sweep "
                                              "will match them", len(child_ids), len(request_ids))


def rules() -> dict:
    return current_app.config["RULES"]


def today():
    from models import utcnow

    return utcnow().date()
