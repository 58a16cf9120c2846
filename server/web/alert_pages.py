"""The alerts inbox: alerts in the user's scope, still open or acknowledged by default (an acknowledged
urgent alert is not dealt with until it is resolved), one row per follow-up at its highest level
(an overdue visit is one row, "escalated", not two), acknowledge one or many, and resolve. Names and
villages, and the note said on resolving, stand beside the case code for the roles that may see the child
(audited as a read)."""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext, ngettext
from sqlalchemy import and_, case, func, or_, true
from sqlalchemy.orm import aliased

from models import Alert, Child, User, audit, db
from models.access import child_scope
from models.alerting import KIND_PREFIX, LIVE
from models.errors import Problem
from models.followups import RESOLUTION_NOTE_MAX, resolution
from models.records import update_record
from models.vocab import ALERT_SEVERITIES, ALERT_STATUSES
from server.api.common import commit_and_plan
from server.web import bp
from server.web.forms import errors_of
from server.web.paging import paginate
from server.web.rendering import humanize, parse_uuid, render, web_actor
from server.web.session import check_csrf, login_required

NEXT_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}
SEVERITY_ORDER = {"urgent": 0, "warning": 1, "info": 2}
# The status filter: "live" (open or acknowledged) is the default.
STATUS_CHOICES = ("live", *ALERT_STATUSES, "all")
MAX_BULK = 200


def alert_scope(user):
    """Managers see every alert; a caseworker those addressed to them."""
    return true() if user.role == "manager" else Alert.recipient_id == user.id


# A follow-up's rules (models/alerting.py: <kind>_due_soon … <kind>_escalated; a reception stay warns
# first) and how far each has gone: the highest is the row a list shows.
LADDER = {f"{kind}{suffix}": level for kind in set(KIND_PREFIX.values())
          for suffix, level in (("_due_soon", 1), ("_warn", 1), ("_due", 2), ("_overdue", 3), ("_escalated", 4))}


def _level():
    return case(LADDER, value=Alert.rule, else_=0)


def _one_matter():
    """A live alert on a follow-up's ladder (due soon … escalated): one matter with its siblings.
    Anything else (a danger report, a missed streak, a resolved alert) is a matter of its own."""
    return and_(Alert.status.in_(LIVE), Alert.followup_id.is_not(None), Alert.rule.in_(LADDER))


def shown_alerts(user, conditions):
    """The alerts a list shows: of the live alerts of one follow-up's ladder only the highest level
    is a row (the others are the same matter, told to someone else or earlier). A subquery of ids."""
    group = func.coalesce(case((_one_matter(), Alert.followup_id)), Alert.id)
    ranked = (db.select(Alert.id, func.row_number().over(
        partition_by=group, order_by=(_level().desc(), Alert.created_at.desc())).label("rank"))
        .where(alert_scope(user), Alert.deleted_at.is_(None), *conditions).subquery())
    return db.select(ranked.c.id).where(ranked.c.rank == 1)


def count_shown(user, conditions) -> tuple[int, int]:
    """How many rows ``shown_alerts`` gives, and how many of them are urgent, without ranking them:
    the alerts of their own plus one per follow-up among the rest, in one scan. (Urgent alerts are
    never on a follow-up's ladder, so they count as they are.)"""
    own = case((_one_matter(), None), else_=1)
    own_n, ladders, urgent = db.session.execute(
        db.select(func.count(own), func.count(func.distinct(case((_one_matter(), Alert.followup_id)))),
                  func.count(case((Alert.severity == "urgent", 1))))
        .where(alert_scope(user), Alert.deleted_at.is_(None), *conditions)).one()
    return own_n + ladders, urgent


def live_alert_counts(user) -> dict[str, int]:
    """Open or acknowledged alerts, one per follow-up, as the default list counts them."""
    shown, urgent = count_shown(user, [Alert.status.in_(LIVE)])
    return {"all": shown, "urgent": urgent}


def read_filters(args) -> dict:
    return {"status": args.get("status") if args.get("status") in STATUS_CHOICES else "live",
            "severity": args.get("severity") if args.get("severity") in ALERT_SEVERITIES else None,
            "mine": args.get("mine") == "1"}


def filter_conditions(user, filters) -> list:
    status = filters["status"]
    conditions = []
    if status == "live":
        conditions.append(Alert.status.in_(LIVE))
    elif status != "all":
        conditions.append(Alert.status == status)
    if filters["severity"]:
        conditions.append(Alert.severity == filters["severity"])
    if filters["mine"]:
        conditions.append(Alert.recipient_id == user.id)
    return conditions


@bp.get("/alerts")
@login_required("manager", "caseworker")
def alerts():
    filters = read_filters(request.args)
    ids = shown_alerts(g.user, filter_conditions(g.user, filters)).subquery()
    recipient = aliased(User)
    order = case(SEVERITY_ORDER, value=Alert.severity, else_=3)
    # Names and villages only of children the user may see (a caseworker's alert may be about a child
    # since reassigned); the others show the case code alone.
    visible = and_(child_scope(g.user), Child.deleted_at.is_(None))
    stmt = (
        db.select(Alert, Child.case_code, recipient.username.label("recipient"),
                  case((visible, Child.given_name)).label("given_name"),
                  case((visible, Child.family_name)).label("family_name"),
                  case((visible, Child.village)).label("village"),
                  case((or_(Alert.child_id.is_(None), visible), Alert.resolution_note)).label("note"))
        .join(ids, ids.c.id == Alert.id)
        .outerjoin(Child, Child.id == Alert.child_id)
        .outerjoin(recipient, recipient.id == Alert.recipient_id)
        .order_by(order, Alert.due_on.desc(), Alert.created_at.desc())
    )
    page = paginate(stmt, "web.alerts", total=count_shown(g.user, filter_conditions(g.user, filters))[0])
    html = render("alerts.html", title=gettext("Alerts"), page=page, filters=filters,
                  statuses=STATUS_CHOICES, severities=ALERT_SEVERITIES, max_bulk=MAX_BULK,
                  note_max=RESOLUTION_NOTE_MAX)
    named = [row.Alert.child_id for row in page.items
             if row.Alert.child_id and (row.given_name or row.family_name or row.village or row.note)]
    if named:
        audit("child.list", actor=g.user, children=named, via="web", ip=request.remote_addr, page="alerts")
        db.session.commit()
    return html


def _same_matter(alert: Alert, user):
    """The alert and, when it is a follow-up's, that follow-up's other live alerts the user may act on:
    the list shows them as one row, so one button settles them together."""
    if alert.followup_id is None:
        return [alert]
    return list(db.session.execute(db.select(Alert).where(
        alert_scope(user), Alert.deleted_at.is_(None), Alert.status.in_(LIVE),
        or_(Alert.id == alert.id, Alert.followup_id == alert.followup_id))).scalars())


def change_alert_status(alert: Alert, action: str, note: str | None) -> None:
    """Acknowledge or resolve (with the note, if any) through the record write path, so the caseworker's
    devices get it."""
    if action == "acknowledge":
        fields = {"status": "acknowledged", "acknowledged_by_id": alert.acknowledged_by_id or g.user.id}
    else:
        fields = resolution(g.user.id, note)
    update_record(alert, fields, web_actor())


def act_on(alerts: list[Alert], action: str, note: str | None = None) -> int:
    """Apply ``action`` to each alert it still applies to; the number changed. A follow-up's alerts are
    one matter, so resolving them all carries the same note."""
    changed = [a for a in alerts if a.status == "open" or (action == "resolve" and a.status == "acknowledged")]
    for alert in changed:
        change_alert_status(alert, action, note)
        audit(f"alert.{NEXT_STATUS[action]}", actor=g.user, child_id=alert.child_id, target=alert.id, via="web")
    return len(changed)


def _commit(alerts: list[Alert]) -> None:
    commit_and_plan(*{a.child_id for a in alerts if a.child_id})


@bp.post("/alerts/acknowledge")
@login_required("manager", "caseworker")
def acknowledge_alerts():
    """Acknowledge the alerts ticked in the list (each with its follow-up's other live alerts)."""
    check_csrf()
    ids = [parse_uuid(value) for value in request.form.getlist("alert")[:MAX_BULK]]
    if not ids:
        flash(gettext("Tick the alerts to acknowledge first."), "error")
        return redirect(_back())
    chosen = db.session.execute(db.select(Alert).where(
        Alert.id.in_(ids), alert_scope(g.user), Alert.deleted_at.is_(None))).scalars().all()
    matters = {a.id: a for alert in chosen for a in _same_matter(alert, g.user)}
    try:
        n = act_on(list(matters.values()), "acknowledge")
    except Problem as exc:
        db.session.rollback()
        flash(" ".join(m for ms in errors_of(exc).values() for m in ms), "error")
        return redirect(_back())
    _commit(list(matters.values()))
    flash(ngettext("%(num)d alert acknowledged.", "%(num)d alerts acknowledged.", n), "success")
    return redirect(_back())


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
        flash(gettext("This alert is already %(status)s.", status=humanize(alert.status)), "info")
        return redirect(_back())
    matter = _same_matter(alert, g.user)
    try:
        act_on(matter, action, request.form.get("note"))
    except Problem as exc:
        db.session.rollback()
        flash(" ".join(m for ms in errors_of(exc).values() for m in ms), "error")
        return redirect(_back())
    _commit(matter)
    flash(gettext("Alert acknowledged.") if action == "acknowledge" else gettext("Alert resolved."), "success")
    return redirect(_back())


def _back() -> str:
    """Back to the list the button was on (only a path on this site)."""
    target = request.form.get("back", "")
    return target if target.startswith("/") and not target.startswith("//") else url_for("web.alerts")
