"""Family tracing on the JSON API (issue 14): requests, their traces, the match review queue and the
family verification of a confirmed link.

Managers see every request; a caseworker the requests they follow. Matches (and links between a request
and a child) are for managers only. Every read of a request or a match is audited, as a child's is.
"""

from flask import g, request
from marshmallow import fields, validate

from models import Child, audit, db
from models.access import can_see_child, match_visible, matches_in_scope, sees_restricted
from models.matching import STATUSES, MatchCandidate, decide
from models.merging import merge_match
from models.schemas import Strict, dump_record, page_number
from models.tracing import (
    REQUEST_STATUSES,
    TraceFields,
    TracingLink,
    TracingRequest,
    TracingRequestFields,
    VerificationFields,
    add_trace,
    can_see_request,
    create_request,
    links_of,
    request_scope,
    traces_of,
    update_request,
    verify,
)
from server.api import Blueprint
from server.api.common import (
    commit_and_plan,
    match_after_commit,
    not_found,
    require_version,
    today,
    with_etag,
)
from server.auth import require_user
from server.errors import ApiError

blp = Blueprint("tracing", __name__, url_prefix="/api/v1", description="Family tracing and matching")


class RequestQuery(Strict):
    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    district = fields.String(validate=validate.Length(max=64))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class MatchQuery(Strict):
    status = fields.String(load_default="pending", validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(("request_child", "child_child")))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def request_body(record: TracingRequest) -> dict:
    restricted = sees_restricted(g.user)
    if restricted:
        audit("tracing_request.restricted_read", actor=g.user, target=record.id, ip=request.remote_addr)
    return dump_record(record, restricted=restricted)


def load_request(request_id) -> TracingRequest:
    record = db.session.get(TracingRequest, request_id)
    if record is None or not can_see_request(g.user, record):
        raise not_found("tracing request")
    return record


def _own_caseload(data: dict) -> None:
    """A caseworker opens requests into their own caseload and cannot hand one to someone else."""
    if g.user.role != "caseworker":
        return
    data.setdefault("caseworker", g.user.username)
    if data["caseworker"] != g.user.username:
        raise ApiError(403, "forbidden", "A caseworker follows only their own tracing requests.")


@blp.get("/tracing-requests")
@blp.arguments(RequestQuery, location="query")
@require_user("manager", "caseworker")
def list_requests(query):
    stmt = db.select(TracingRequest).where(request_scope(g.user))
    for key in ("status", "district"):
        if key in query:
            stmt = stmt.where(getattr(TracingRequest, key) == query[key])
    total = db.session.execute(db.select(db.func.count()).select_from(stmt.subquery())).scalar_one()
    page, per_page = query["page"], query["per_page"]
    rows = db.session.execute(stmt.order_by(TracingRequest.created_at.desc(), TracingRequest.id)
                              .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    audit("tracing_request.list", actor=g.user, requests=[str(r.id) for r in rows], ip=request.remote_addr)
    db.session.commit()
    return {"items": [dump_record(r) for r in rows], "total": total, "page": page, "per_page": per_page}


@blp.post("/tracing-requests")
@blp.arguments(TracingRequestFields)
@require_user("manager", "caseworker")
def create(data):
    _own_caseload(data)
    data.pop("status", None)  # a request starts open; matching and people move it on
    record = create_request(data, g.user)
    audit("tracing_request.create", actor=g.user, target=record.id)
    body = request_body(record)
    db.session.commit()
    match_after_commit(request_ids=[record.id])
    return with_etag(body, 201)


@blp.get("/tracing-requests/<uuid:request_id>")
@require_user("manager", "caseworker")
def read(request_id):
    record = load_request(request_id)
    audit("tracing_request.read", actor=g.user, target=record.id, ip=request.remote_addr)
    body = request_body(record)
    body["traces"] = [dump_record(t) for t in traces_of(record)]
    if g.user.role == "manager":
        body["links"] = [link_body(found) for found in links_of(request_id=record.id)]
    db.session.commit()
    return with_etag(body)


@blp.patch("/tracing-requests/<uuid:request_id>")
@blp.arguments(TracingRequestFields(partial=True))
@require_user("manager", "caseworker")
def edit(data, request_id):
    record = load_request(request_id)
    require_version(record)
    if g.user.role == "caseworker" and "caseworker" in data:
        _own_caseload(data)
    changed = update_request(record, data, g.user)
    audit("tracing_request.update", actor=g.user, target=record.id, fields=changed)
    body = request_body(record)
    db.session.commit()
    match_after_commit(request_ids=[record.id])
    return with_etag(body)


@blp.get("/tracing-requests/<uuid:request_id>/traces")
@require_user("manager", "caseworker")
def list_traces(request_id):
    record = load_request(request_id)
    audit("trace.list", actor=g.user, target=record.id, ip=request.remote_addr)
    db.session.commit()
    return {"items": [dump_record(t) for t in traces_of(record)]}


@blp.post("/tracing-requests/<uuid:request_id>/traces")
@blp.arguments(TraceFields)
@require_user("manager", "caseworker")
def create_trace(data, request_id):
    record = load_request(request_id)
    trace = add_trace(record, data, g.user)
    audit("trace.create", actor=g.user, target=record.id, kind=trace.kind)
    body = dump_record(trace)
    db.session.commit()
    return body, 201


def link_body(found: TracingLink) -> dict:
    child = db.session.get(Child, found.child_id)
    return {"id": str(found.id), "request_id": str(found.request_id), "child_id": str(found.child_id),
            "case_code": child.case_code, "verified_on": found.verified_on and found.verified_on.isoformat(),
            "verification_note": found.verification_note}


def match_body(candidate: MatchCandidate) -> dict:
    codes = dict(db.session.execute(db.select(Child.id, Child.case_code).where(
        Child.id.in_([i for i in (candidate.child_id, candidate.other_child_id) if i]))).all())
    return {"id": str(candidate.id), "kind": candidate.kind, "score": candidate.score,
            "signals": candidate.signals, "status": candidate.status,
            "request_id": candidate.request_id and str(candidate.request_id),
            "child_id": str(candidate.child_id), "case_code": codes.get(candidate.child_id),
            "other_child_id": candidate.other_child_id and str(candidate.other_child_id),
            "other_case_code": codes.get(candidate.other_child_id),
            "created_at": candidate.created_at.isoformat()}


def _children_of(candidates) -> list:
    return [i for c in candidates for i in (c.child_id, c.other_child_id) if i]


@blp.get("/matches")
@blp.arguments(MatchQuery, location="query")
@require_user("manager")
def list_matches(query):
    stmt = db.select(MatchCandidate).where(MatchCandidate.status == query["status"], matches_in_scope(g.user))
    if "kind" in query:
        stmt = stmt.where(MatchCandidate.kind == query["kind"])
    total = db.session.execute(db.select(db.func.count()).select_from(stmt.subquery())).scalar_one()
    page, per_page = query["page"], query["per_page"]
    rows = db.session.execute(stmt.order_by(MatchCandidate.score.desc(), MatchCandidate.id)
                              .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    audit("match.list", actor=g.user, children=_children_of(rows), ip=request.remote_addr)
    items = [match_body(c) for c in rows]
    db.session.commit()
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def load_match(match_id) -> MatchCandidate:
    candidate = db.session.get(MatchCandidate, match_id)
    if candidate is None or not match_visible(g.user, candidate):
        raise not_found("match")
    return candidate


class MatchDecisionFields(Strict):
    override_reason = fields.String(allow_none=True, validate=validate.Length(max=500))


@blp.get("/matches/<uuid:match_id>")
@require_user("manager")
def read_match(match_id):
    candidate = load_match(match_id)
    audit("match.read", actor=g.user, target=candidate.id, children=_children_of([candidate]),
          ip=request.remote_addr)
    body = match_body(candidate)
    db.session.commit()
    return body


@blp.post("/matches/<uuid:match_id>/<any(confirm, dismiss):choice>")
@blp.arguments(MatchDecisionFields)
@require_user("manager")
def decide_match(data, match_id, choice):
    """``override_reason``: to confirm a child ↔ request match without the child's tracing consent."""
    candidate = load_match(match_id)
    decide(candidate, choice, g.user, override_reason=data.get("override_reason"))
    audit(f"match.{choice}", actor=g.user, target=candidate.id, children=_children_of([candidate]))
    body = match_body(candidate)
    db.session.commit()
    return body


class MergeFields(Strict):
    # The child kept; by default the older registration.
    survivor_id = fields.UUID(load_default=None)


@blp.post("/matches/<uuid:match_id>/merge")
@blp.arguments(MergeFields)
@require_user("manager")
def merge_pair(data, match_id):
    """Confirm a possible duplicate (if pending) and merge the two children into the survivor."""
    candidate = load_match(match_id)
    result = merge_match(candidate, data["survivor_id"], g.user, source="api")
    audit("match.confirm", actor=g.user, target=candidate.id, children=_children_of([candidate]), merged=True)
    body = {**match_body(candidate), "merge": merge_body(result)}
    commit_and_plan(result.survivor.id)
    return body


def merge_body(result) -> dict:
    return {"survivor_id": str(result.survivor.id), "survivor_case_code": result.survivor.case_code,
            "absorbed_id": str(result.absorbed.id), "absorbed_case_code": result.absorbed.case_code,
            "moved": result.moved, "filled_fields": result.filled,
            "conflict_id": result.conflict and str(result.conflict.id),
            "conflicting_fields": result.conflict.fields if result.conflict else [],
            "survivor_stage": result.survivor.stage, "absorbed_stage": result.absorbed.stage}


@blp.post("/tracing-links/<uuid:link_id>/verify")
@blp.arguments(VerificationFields)
@require_user("manager")
def verify_link(data, link_id):
    found = db.session.get(TracingLink, link_id)
    child = db.session.get(Child, found.child_id) if found else None
    if found is None or not can_see_child(g.user, child):
        raise not_found("tracing link")
    verify(found, verified_on=data["verified_on"], note=data.get("note"), by=g.user, today=today(),
           override_reason=data.get("override_reason"))
    audit("tracing_link.verify", actor=g.user, child_id=found.child_id, target=found.request_id)
    body = link_body(found)
    db.session.commit()
    return body
