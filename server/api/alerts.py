"""The alert inbox and the follow-up worklist.

A caseworker sees the alerts addressed to them and the follow-ups of their own children; a manager
sees all; admins and analysts see none (they see no child's record). An alert may be acknowledged or
resolved by its recipient or by a manager; anyone else gets 404, so alert ids do not leak.
"""

from datetime import timedelta

from flask import g, request
from marshmallow import fields, validate
from sqlalchemy import and_, case, or_

from models import Alert, Child, Followup, User, audit, db
from models.access import CHILD_READERS, child_scope
from models.alerting import DANGER_RULE, DANGER_TRANSITION
from models.followups import resolution
from models.lifecycle import OPEN_STAGES
from models.records import update_record
from models.schemas import Strict, dump_record, page_number
from models.vocab import ALERT_SEVERITIES, ALERT_STATUSES, FOLLOWUP_KINDS
from server.api import Blueprint
from server.api.common import api_actor, not_found, rules, today
from server.auth import require_user
from server.errors import ApiError

blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="Alerts and the follow-up worklist")

FOLLOWUP_VIEWS = ("overdue", "due", "scheduled")


class AlertQuery(Strict):
    status = fields.String(validate=validate.OneOf(ALERT_STATUSES))
    severity = fields.String(validate=validate.OneOf(ALERT_SEVERITIES))
    child = fields.UUID()
    recipient = fields.String(validate=validate.Length(max=64))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ResolveBody(Strict):
    note = fields.String(allow_none=True)  # its length is the domain's check (models.followups.resolution)


class FollowupQuery(Strict):
    status = fields.String(load_default="scheduled", validate=validate.OneOf(FOLLOWUP_VIEWS))
    kind = fields.String(validate=validate.OneOf(FOLLOWUP_KINDS))
    page = page_number()
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def alert_body(alert: Alert, case_code: str | None, stage: str | None, recipient: str | None,
               note: str | None) -> dict:
    body = dump_record(alert)
    body["resolution_note"] = note
    body["case_code"] = case_code
    body["recipient"] = recipient
    # The urgent path offers the missing transition while the child is still in an open stage.
    offer = alert.rule == DANGER_RULE and alert.status != "resolved" and stage in OPEN_STAGES
    body["suggested_transition"] = DANGER_TRANSITION if offer else None
    return body


def _alert_rows(stmt):
    return [alert_body(*row) for row in db.session.execute(stmt)]


def _with_labels(stmt):
    # The note is personal: only for a reader who may see the child (a caseworker's alert may be about
    # a child since reassigned).
    visible = or_(Alert.child_id.is_(None), and_(child_scope(g.user), Child.deleted_at.is_(None)))
    return (stmt.add_columns(Child.case_code, Child.stage, User.username, case((visible, Alert.resolution_note)))
            .outerjoin(Child, Child.id == Alert.child_id).join(User, User.id == Alert.recipient_id))


@blp.get("/alerts")
@blp.arguments(AlertQuery, location="query")
@require_user(*CHILD_READERS)
def list_alerts(query):
    stmt = db.select(Alert).where(Alert.deleted_at.is_(None))
    if g.user.role != "manager":
        stmt = stmt.where(Alert.recipient_id == g.user.id)
    if "status" in query:
        stmt = stmt.where(Alert.status == query["status"])
    if "severity" in query:
        stmt = stmt.where(Alert.severity == query["severity"])
    if "child" in query:
        stmt = stmt.where(Alert.child_id == query["child"])
    if "recipient" in query:
        stmt = stmt.where(Alert.recipient_id.in_(db.select(User.id).where(User.username == query["recipient"])))
    total = db.session.execute(db.select(db.func.count()).select_from(stmt.subquery())).scalar_one()
    page, per_page = query["page"], query["per_page"]
    severity_first = case({"urgent": 0, "warning": 1}, value=Alert.severity, else_=2)
    rows = _alert_rows(_with_labels(stmt).order_by(severity_first, Alert.due_on, Alert.seq)
                       .limit(per_page).offset((page - 1) * per_page))
    noted = [row["child_id"] for row in rows if row["resolution_note"] and row["child_id"]]
    if noted:  # a note is personal text about the child: its read is audited like a name's
        audit("child.list", actor=g.user, children=noted, ip=request.remote_addr, page="alerts")
        db.session.commit()
    return {"items": rows, "total": total, "page": page, "per_page": per_page}


def load_alert(alert_id) -> Alert:
    """The alert if the current user may act on it: its recipient or a manager."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.deleted_at is not None:
        raise not_found("alert")
    if g.user.role != "manager" and alert.recipient_id != g.user.id:
        raise not_found("alert")
    return alert


def _respond(alert: Alert):
    db.session.commit()
    (row,) = _alert_rows(_with_labels(db.select(Alert).where(Alert.id == alert.id)))
    return row


@blp.post("/alerts/<uuid:alert_id>/acknowledge")
@require_user(*CHILD_READERS)
def acknowledge(alert_id):
    alert = load_alert(alert_id)
    if alert.status == "resolved":
        raise ApiError(409, "conflict", "This alert is already resolved.")
    update_record(alert, {"status": "acknowledged", "acknowledged_by_id": alert.acknowledged_by_id or g.user.id},
                  api_actor())
    return _respond(alert)


@blp.post("/alerts/<uuid:alert_id>/resolve")
@blp.arguments(ResolveBody, required=False)
@require_user(*CHILD_READERS)
def resolve(body, alert_id):
    """Resolve, with an optional note on what was done. Resolving again changes nothing."""
    alert = load_alert(alert_id)
    if alert.status != "resolved":
        update_record(alert, resolution(g.user.id, body.get("note")), api_actor())
    return _respond(alert)


@blp.get("/followups")
@blp.arguments(FollowupQuery, location="query")
@require_user(*CHILD_READERS)
def list_followups(query):
    """The worklist: scheduled follow-ups of the children this user may see, soonest first.
    ``due`` is due today or within the "due soon" window; ``overdue`` is past due."""
    now = today()
    stmt = (db.select(Followup, Child.case_code).join(Child, Child.id == Followup.child_id)
            .where(child_scope(g.user), Child.deleted_at.is_(None), Child.stage.in_(OPEN_STAGES),
                   Followup.deleted_at.is_(None), Followup.status == "scheduled"))
    if query["status"] == "overdue":
        stmt = stmt.where(Followup.due_on < now)
    elif query["status"] == "due":
        stmt = stmt.where(Followup.due_on >= now,
                          Followup.due_on <= now + timedelta(days=rules()["DUE_SOON_DAYS"]))
    if "kind" in query:
        stmt = stmt.where(Followup.kind == query["kind"])
    total = db.session.execute(db.select(db.func.count()).select_from(stmt.subquery())).scalar_one()
    page, per_page = query["page"], query["per_page"]
    rows = db.session.execute(stmt.order_by(Followup.due_on, Child.case_code)
                              .limit(per_page).offset((page - 1) * per_page)).all()
    items = [{**dump_record(f), "case_code": code, "days_overdue": max(0, (now - f.due_on).days)}
             for f, code in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}
