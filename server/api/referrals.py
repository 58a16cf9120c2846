"""Referrals of a child to a partner agency or an outside provider (docs/referrals.md).

Who may act is who may see the child: a manager, or the child's caseworker; others get 404. Every
read of a child's referrals is audited, as a read of the child is."""

from flask import g, request
from marshmallow import fields, validate

from models import Child, audit, db
from models.access import CHILD_READERS, child_scope
from models.referrals import (
    OPEN_STATUSES,
    REFERRAL_STATUSES,
    Referral,
    advance_referral,
    propose_referral,
    referral_body,
)
from models.schemas import Strict
from models.vocab import SERVICE_TYPES
from server.api import Blueprint
from server.api.common import load_child, not_found, today
from server.auth import require_user

blp = Blueprint("referrals", __name__, url_prefix="/api/v1", description="Referrals")


class ReferralFields(Strict):
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPES))
    agency_id = fields.UUID(allow_none=True)
    provider_name = fields.String(allow_none=True, validate=validate.Length(max=120))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))
    override_reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class StepFields(Strict):
    status = fields.String(required=True, validate=validate.OneOf(REFERRAL_STATUSES))


class ReferralQuery(Strict):
    status = fields.String(validate=validate.OneOf(("open", *REFERRAL_STATUSES)))


def _body(referral: Referral) -> dict:
    return referral_body(referral, show_override=g.user.is_manager)


def _audit_read(**which) -> None:
    """``child_id=`` one child, or ``children=`` the ids a list showed."""
    audit("referral.read", actor=g.user, via="api", ip=request.remote_addr, **which)
    db.session.commit()


@blp.get("/children/<uuid:child_id>/referrals")
@require_user(*CHILD_READERS)
def child_referrals(child_id):
    child = load_child(child_id)
    referrals = db.session.execute(db.select(Referral).where(Referral.child_id == child.id)
                                   .order_by(Referral.created_at)).scalars().all()
    _audit_read(child_id=child.id)
    return {"items": [_body(r) for r in referrals]}


@blp.post("/children/<uuid:child_id>/referrals")
@blp.arguments(ReferralFields)
@require_user(*CHILD_READERS)
def create_referral(data, child_id):
    child = load_child(child_id)
    referral = propose_referral(child, data, g.user, today=today())
    db.session.commit()
    return _body(referral), 201


@blp.get("/referrals")
@blp.arguments(ReferralQuery, location="query")
@require_user(*CHILD_READERS)
def list_referrals(query):
    """The referrals of the children this user may see; ``status=open`` for those still running."""
    stmt = db.select(Referral).join(Child, Child.id == Referral.child_id).where(
        child_scope(g.user), Child.deleted_at.is_(None))
    status = query.get("status")
    if status == "open":
        stmt = stmt.where(Referral.status.in_(OPEN_STATUSES))
    elif status:
        stmt = stmt.where(Referral.status == status)
    referrals = db.session.execute(stmt.order_by(Referral.created_at)).scalars().all()
    _audit_read(children=[r.child_id for r in referrals])
    return {"items": [_body(r) for r in referrals]}


def load_referral(referral_id) -> Referral:
    referral = db.session.get(Referral, referral_id)
    if referral is None:
        raise not_found("referral")
    load_child(referral.child_id)  # 404 for a child out of scope, as for no such referral
    return referral


@blp.get("/referrals/<uuid:referral_id>")
@require_user(*CHILD_READERS)
def get_referral(referral_id):
    referral = load_referral(referral_id)
    _audit_read(child_id=referral.child_id)
    return _body(referral)


@blp.post("/referrals/<uuid:referral_id>/steps")
@blp.arguments(StepFields)
@require_user(*CHILD_READERS)
def step_referral(data, referral_id):
    referral = advance_referral(load_referral(referral_id), data["status"], g.user, today=today())
    db.session.commit()
    return _body(referral)
