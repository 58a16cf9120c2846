"""A child's consents, assessments, services and follow-ups: list and add under the child, and
edit or delete each by id. Follow-up outcomes (a visit done, missed) are edits of the follow-up."""


from flask import g, request

from models import audit, db
from models.access import CHILD_READERS
from models.records import ENTITIES, create_record, delete_record, update_record
from models.schemas import api_schema, dump_record
from server.api import Blueprint
from server.api.common import (
    api_actor,
    commit_and_plan,
    load_child,
    load_child_record,
    require_version,
    with_etag,
)
from server.auth import require_user

blp = Blueprint("records", __name__, url_prefix="/api/v1", description="A child's records")

# URL collection name -> entity name.
COLLECTIONS = {"consents": "consent", "assessments": "assessment", "services": "service",
               "followups": "followup"}
ORDER = {"consent": "given_on", "assessment": "assessed_on", "service": "started_on", "followup": "due_on"}


def _register(collection: str, entity: str) -> None:
    model = ENTITIES[entity]
    order = getattr(model, ORDER[entity])

    @blp.get(f"/children/<uuid:child_id>/{collection}", endpoint=f"list_{collection}")
    @require_user(*CHILD_READERS)
    def list_records(child_id):
        child = load_child(child_id)
        rows = db.session.execute(
            db.select(model).where(model.child_id == child.id, model.deleted_at.is_(None))
            .order_by(order, model.created_at)
        ).scalars().all()
        audit(f"{entity}.list", actor=g.user, child_id=child.id, ip=request.remote_addr)
        db.session.commit()
        return {"items": [dump_record(r) for r in rows]}

    @blp.post(f"/children/<uuid:child_id>/{collection}", endpoint=f"create_{collection}")
    @blp.arguments(api_schema(entity))
    @require_user(*CHILD_READERS)
    def create(data, child_id):
        child = load_child(child_id)
        record = create_record(entity, {**data, "child_id": child.id}, api_actor())
        audit(f"{entity}.create", actor=g.user, child_id=child.id, target=record.id, ip=request.remote_addr)
        body = dump_record(record)
        commit_and_plan(child.id)
        return with_etag(body, 201)

    @blp.patch(f"/{collection}/<uuid:record_id>", endpoint=f"edit_{collection}")
    @blp.arguments(api_schema(entity, partial=True))
    @require_user(*CHILD_READERS)
    def edit(data, record_id):
        record = load_child_record(model, record_id, entity)
        require_version(record)
        update_record(record, data, api_actor())
        audit(f"{entity}.update", actor=g.user, child_id=record.child_id, target=record.id, fields=sorted(data),
              ip=request.remote_addr)
        body = dump_record(record)
        commit_and_plan(record.child_id)
        return with_etag(body)

    @blp.delete(f"/{collection}/<uuid:record_id>", endpoint=f"delete_{collection}")
    @require_user(*CHILD_READERS)
    def delete(record_id):
        record = load_child_record(model, record_id, entity)
        require_version(record)
        delete_record(record, api_actor())
        audit(f"{entity}.delete", actor=g.user, child_id=record.child_id, target=record.id, ip=request.remote_addr)
        commit_and_plan(record.child_id)
        return "", 204

    @blp.get(f"/{collection}/<uuid:record_id>", endpoint=f"read_{collection}")
    @require_user(*CHILD_READERS)
    def read(record_id):
        record = load_child_record(model, record_id, entity)
        audit(f"{entity}.read", actor=g.user, child_id=record.child_id, target=record.id, ip=request.remote_addr)
        body = dump_record(record)
        db.session.commit()
        return with_etag(body)


for _collection, _entity in COLLECTIONS.items():
    _register(_collection, _entity)
