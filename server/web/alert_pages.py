"""The alerts inbox: open, acknowledged and resolved alerts in the user's scope, with acknowledge and
resolve buttons (plain forms: they work without JavaScript)."""

from flask import abort, flash, g, redirect, request, url_for
from sqlalchemy import and_
from sqlalchemy.orm import aliased

from models import Alert, Child, User, audit, db
from models.errors import Problem
from models.records import update_record
from models.vocab import ALERT_SEVERITIES, ALERT_STATUSES
from server.api.common import commit_and_plan
from server.web import bp
from server.web.dashboard import alert_scope
from server.web.forms import errors_of
from server.web.paging import paginate
from server.web.rendering import parse_uuid, render, web_actor
from server.web.session import login_required

NEXT_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}
SEVERITY_ORDER = {"urgent": 0, "warning": 1, "info": 2}


def change_alert_status(alert: Alert, action: str) -> None:
    """Acknowledge or resolve through the record write path, so the caseworker's devices get it."""
    status = NEXT_STATUS[action]
    fields = {"status": status}
    if status == "acknowledged":
        fields["acknowledged_by_id"] = alert.acknowledged_by_id or g.user.id
    else:
        fields["resolved_by_id"] = g.user.id
    update_record(alert, fields, web_actor())


@bp.get("/alerts")
@login_required("manager", "caseworker")
def alerts():
    status = request.args.get("status", "open")
    severity = request.args.get("severity") if request.args.get("severity") in ALERT_SEVERITIES else None
    mine = request.args.get("mine") == "1"
    conditions = [alert_scope(g.user), Alert.deleted_at.is_(None)]
    if status in ALERT_STATUSES:
        conditions.append(Alert.status == status)
    else:
        status = "all"
    if severity:
        conditions.append(Alert.severity == severity)
    if mine:
        conditions.append(Alert.recipient_id == g.user.id)
    recipient = aliased(User)
    order = db.case({k: v for k, v in SEVERITY_ORDER.items()}, value=Alert.severity, else_=3)
    stmt = (
        db.select(Alert, Child.case_code, recipient.username.label("recipient"))
        .outerjoin(Child, Child.id == Alert.child_id)
        .outerjoin(recipient, recipient.id == Alert.recipient_id)
        .where(and_(*conditions)).order_by(order, Alert.due_on.desc(), Alert.created_at.desc())
    )
    count = db.select(db.func.count()).select_from(Alert).where(and_(*conditions))
    page = paginate(stmt, "web.alerts", count_stmt=count)
    return render("alerts.html", title="Alerts", page=page, status=status, severity=severity, mine=mine,
                  statuses=ALERT_STATUSES, severities=ALERT_SEVERITIES)


@bp.post("/alerts/<alert_id>/<action>")
@login_required("manager", "caseworker")
def alert_action(alert_id, action):
    if action not in NEXT_STATUS:
        abort(404)
    alert = db.session.execute(
        db.select(Alert).where(Alert.id == parse_uuid(alert_id), alert_scope(g.user), Alert.deleted_at.is_(None))
    ).scalar_one_or_none()
    if alert is None:
        abort(404)
    if alert.status == "resolved" or (action == "acknowledge" and alert.status == "acknowledged"):
        flash(f"This alert is already {alert.status}.", "info")
        return redirect(request.referrer or url_for("web.alerts"))
    try:
        change_alert_status(alert, action)
    except Problem as exc:
        db.session.rollback()
        flash(" ".join(m for ms in errors_of(exc).values() for m in ms), "error")
        return redirect(url_for("web.alerts"))
    audit(f"alert.{NEXT_STATUS[action]}", actor=g.user, child_id=alert.child_id, target=alert.id, via="web")
    commit_and_plan(*([alert.child_id] if alert.child_id else []))
    flash(f"Alert {NEXT_STATUS[action]}.", "success")
    return redirect(_back())


def _back() -> str:
    """Back to the list the button was on (only a path on this site)."""
    target = request.form.get("back", "")
    return target if target.startswith("/") and not target.startswith("//") else url_for("web.alerts")
