"""Inter-agency transfers of a case (docs/referrals.md): proposed by a manager of the sending agency,
accepted or declined by one of the receiving agency, withdrawn by the sender while it waits.

A transfer is visible to whoever may see the child, and to the receiving agency's managers (who do not
see the child until they accept it); to anyone else it does not exist (404). Reads are audited."""

from flask import g, request
from marshmallow import fields, validate

from models import Child, audit, db
from models.access import CHILD_READERS
from models.schemas import Strict
from models.transfers import (
    MAX_TEXT,
    Transfer,
    can_see_transfer,
    decide_transfer,
    incoming_transfers,
    propose_transfer,
    transfer_body,
    transfers_of,
)
from server.api import Blueprint
from server.api.common import commit_and_plan, load_child, not_found, today
from server.auth import require_user

blp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Inter-agency transfers")
STEPS = {"accept": "accepted", "decline": "declined", "withdraw": "withdrawn"}


class TransferFields(Strict):
    to_agency_id = fields.UUID(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))
    override_reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class DecisionFields(Strict):
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT))


def _body(transfer: Transfer) -> dict:
    return transfer_body(transfer, db.session.get(Child, transfer.child_id).case_code)


def _audit_read(**which) -> None:
    audit("transfer.read", actor=g.user, via="api", ip=request.remote_addr, **which)
    db.session.commit()


@blp.get("/children/<uuid:child_id>/transfers")
@require_user(*CHILD_READERS)
def child_transfers(child_id):
    child = load_child(child_id)
    items = [_body(t) for t in transfers_of(child.id)]
    _audit_read(child_id=child.id)
    return {"items": items}


@blp.post("/children/<uuid:child_id>/transfers")
@blp.arguments(TransferFields)
@require_user("manager")
def create_transfer(data, child_id):
    transfer = propose_transfer(load_child(child_id), data, g.user, today=today())
    db.session.commit()
    return _body(transfer), 201


@blp.get("/transfers")
@require_user("manager")
def list_incoming():
    """The transfers waiting for an answer from the manager's agency."""
    transfers = incoming_transfers(g.user)
    items = [_body(t) for t in transfers]
    _audit_read(children=[t.child_id for t in transfers])
    return {"items": items}


def load_transfer(transfer_id) -> Transfer:
    transfer = db.session.get(Transfer, transfer_id)
    child = db.session.get(Child, transfer.child_id) if transfer else None
    if transfer is None or child is None or not can_see_transfer(g.user, transfer, child):
        raise not_found("transfer")
    return transfer


@blp.get("/transfers/<uuid:transfer_id>")
@require_user(*CHILD_READERS)
def get_transfer(transfer_id):
    transfer = load_transfer(transfer_id)
    _audit_read(child_id=transfer.child_id)
    return _body(transfer)


@blp.post("/transfers/<uuid:transfer_id>/<any(accept, decline, withdraw):step>")
@blp.arguments(DecisionFields)
@require_user("manager")
def decide(data, transfer_id, step):
    transfer = decide_transfer(load_transfer(transfer_id), STEPS[step], g.user, today=today(),
                               note=data.get("note"), source="api")
    commit_and_plan(transfer.child_id)
    return _body(transfer)
