"""Children: list, register, read, edit, delete, and move through the lifecycle."""

from flask import g, request
from marshmallow import fields, validate

from models import Child, StageTransition, User, audit, db
from models.access import CHILD_READERS, child_scope, sees_restricted
from models.children import normalise_case_code
from models.lifecycle import PHASES, STAGES
from models.records import create_child, delete_record, transition, update_record
from models.schemas import ChildFields, Strict, api_schema, dump_record, page_number
from models.search import search_condition
from models.vocab import RISK_LEVELS, SEXES
from server.api import Blueprint
from server.api.common import api_actor, commit_and_plan, load_child, require_version, rules, today, with_etag
from server.auth import require_user
from server.errors import ApiError

blp = Blueprint("children", __name__, url_prefix="/api/v1/children", description="Children and their stages")


class ChildQuery(Strict):
    stage = fields.String(validate=validate.OneOf(STAGES))
    phase = fields.String(validate=validate.OneOf(list(PHASES)))
    district = fields.String(validate=validate.Length(max=64))
    sex = fields.String(validate=validate.OneOf(SEXES))
    risk_level = fields.String(validate=validate.OneOf(RISK_LEVELS))
    caseworker = fields.String(validate=validate.Length(max=64))
    case_code = fields.String(validate=validate.Length(max=20))
    # Names, aliases and villages through the blind index, or 4+ characters of a case code.
    q = fields.String(validate=validate.Length(min=1, max=100))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def child_body(child: Child) -> dict:
    """The child as this user may see it; a manager's read of restricted fields is audited."""
    restricted = sees_restricted(g.user)
    if restricted:
        audit("child.restricted_read", actor=g.user, child_id=child.id, ip=request.remote_addr)
    return dump_record(child, restricted=restricted)


@blp.get("")
@blp.arguments(ChildQuery, location="query")
@require_user(*CHILD_READERS)
def list_children(query):
    stmt = db.select(Child).where(child_scope(g.user), Child.deleted_at.is_(None))
    for key in ("stage", "district", "sex", "risk_level"):
        if key in query:
            stmt = stmt.where(getattr(Child, key) == query[key])
    if "phase" in query:
        stmt = stmt.where(Child.stage.in_(PHASES[query["phase"]]))
    if "caseworker" in query:
        stmt = stmt.join(User, User.id == Child.caseworker_id).where(User.username == query["caseworker"])
    if "case_code" in query:
        stmt = stmt.where(Child.case_code == normalise_case_code(query["case_code"]))
    if "q" in query:
        stmt = stmt.where(search_condition(query["q"]))
    total = db.session.execute(db.select(db.func.count()).select_from(stmt.subquery())).scalar_one()
    page, per_page = query["page"], query["per_page"]
    rows = db.session.execute(
        stmt.order_by(Child.case_code).limit(per_page).offset((page - 1) * per_page)
    ).scalars().all()
    body = {"items": [dump_record(c) for c in rows], "total": total, "page": page, "per_page": per_page}
    audit("child.list", actor=g.user, children=[c.id for c in rows], ip=request.remote_addr)
    db.session.commit()
    return body


@blp.post("")
@blp.arguments(ChildFields)
@require_user(*CHILD_READERS)
def create(data):
    if g.user.role == "caseworker":
        # A caseworker registers children into their own caseload.
        data.setdefault("caseworker", g.user.username)
        if data["caseworker"] != g.user.username:
            raise ApiError(403, "forbidden", "A caseworker can only register children to their own caseload.")
    child = create_child(data, api_actor(), today=today())
    audit("child.create", actor=g.user, child_id=child.id)
    body = child_body(child)
    commit_and_plan(child.id)
    return with_etag(body, 201)


@blp.get("/<uuid:child_id>")
@require_user(*CHILD_READERS)
def read(child_id):
    child = load_child(child_id)
    audit("child.read", actor=g.user, child_id=child.id, ip=request.remote_addr)
    body = child_body(child)
    db.session.commit()
    return with_etag(body)


@blp.patch("/<uuid:child_id>")
@blp.arguments(ChildFields(partial=True))
@require_user(*CHILD_READERS)
def edit(data, child_id):
    child = load_child(child_id)
    require_version(child)
    if g.user.role == "caseworker" and "caseworker" in data and data["caseworker"] != g.user.username:
        raise ApiError(403, "forbidden", "Only a manager can reassign a child to another caseworker.")
    changed = update_record(child, data, api_actor())
    audit("child.update", actor=g.user, child_id=child.id, fields=changed)
    body = child_body(child)
    commit_and_plan(child.id)
    return with_etag(body)


@blp.delete("/<uuid:child_id>")
@require_user("manager")
def delete(child_id):
    child = load_child(child_id)
    require_version(child)
    delete_record(child, api_actor())
    audit("child.delete", actor=g.user, child_id=child.id)
    commit_and_plan(child.id)
    return "", 204


@blp.get("/<uuid:child_id>/transitions")
@require_user(*CHILD_READERS)
def list_transitions(child_id):
    child = load_child(child_id)
    rows = db.session.execute(
        db.select(StageTransition).where(StageTransition.child_id == child.id)
        .order_by(StageTransition.occurred_on, StageTransition.created_at)
    ).scalars().all()
    audit("stage_transition.list", actor=g.user, child_id=child.id, ip=request.remote_addr)
    db.session.commit()
    return {"items": [dump_record(t) for t in rows]}


@blp.post("/<uuid:child_id>/transitions")
@blp.arguments(api_schema("stage_transition"))
@require_user(*CHILD_READERS)
def move(data, child_id):
    child = load_child(child_id)
    record = transition(
        child, data.pop("to_stage"), api_actor(), today=today(),
        min_follow_up_days=rules()["MIN_FOLLOW_UP_DAYS"], **data,
    )
    audit("child.transition", actor=g.user, child_id=child.id, to_stage=record.to_stage)
    body = {**dump_record(record), "child": {"stage": child.stage, "version": child.version}}
    commit_and_plan(child.id)
    return body, 201
