"""The audit log: filter by action, person, child case code and dates; newest first.

Duties are kept apart (DESIGN §7): managers read the trail of access to children (every event that
names a child, one or many, and exports), admins the rest (sign-ins, accounts, devices, keys,
backups). Neither reads the other's half, so an admin's own account changes are seen by admins and
a manager's reads of children by the other managers."""

from datetime import UTC, date, datetime, time, timedelta

from flask import g, request
from flask_babel import gettext
from sqlalchemy import and_, exists, or_, true

from models import AuditEvent, AuditEventChild, Child, User, db
from models.access import child_scope, sees_all_children
from models.children import normalise_case_code
from server.web import bp
from server.web.paging import paginate
from server.web.rendering import render
from server.web.session import login_required


def _day(text):
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def about_children():
    """Events about children: naming one, naming several, or an export of them."""
    return or_(AuditEvent.child_id.is_not(None),
               exists().where(AuditEventChild.event_id == AuditEvent.id),
               AuditEvent.action.startswith("export."), AuditEvent.action.startswith("retention"))


def _in_reach(user):
    """A manager whose agency limits reach reads the trail of its children only: events naming one of
    them, or naming several of which one is theirs (never exports and retention runs of everyone)."""
    reach = db.select(Child.id).where(child_scope(user))
    return or_(AuditEvent.child_id.in_(reach), and_(AuditEvent.child_id.is_(None), exists().where(
        AuditEventChild.event_id == AuditEvent.id, AuditEventChild.child_id.in_(reach))))


@bp.get("/audit")
@login_required("admin", "manager")
def audit_log():
    args = request.args
    conditions = [about_children() if g.user.role == "manager" else ~about_children()]
    if g.user.role == "manager" and not sees_all_children(g.user):
        conditions.append(_in_reach(g.user))
    action = (args.get("action") or "").strip()[:40]
    username = (args.get("user") or "").strip()[:64]
    case_code = (args.get("case_code") or "").strip()[:20]
    since, until = _day(args.get("since")), _day(args.get("until"))
    if action:
        # A prefix, so "child" finds child.read, child.update and child.restricted_read.
        conditions.append(AuditEvent.action.startswith(action, autoescape=True))
    if username:
        conditions.append(AuditEvent.actor_id == db.select(User.id).where(User.username == username).scalar_subquery())
    if case_code:
        child_id = db.select(Child.id).where(Child.case_code == normalise_case_code(case_code)).scalar_subquery()
        conditions.append(or_(AuditEvent.child_id == child_id, exists().where(
            AuditEventChild.event_id == AuditEvent.id, AuditEventChild.child_id == child_id)))
    if since:
        conditions.append(AuditEvent.at >= datetime.combine(since, time.min, tzinfo=UTC))
    if until and until < date.max:  # the day after 9999-12-31 does not exist; nothing is later anyway
        conditions.append(AuditEvent.at < datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))
    actor = db.aliased(User)
    stmt = (db.select(AuditEvent, actor.username, Child.case_code)
            .outerjoin(actor, actor.id == AuditEvent.actor_id)
            .outerjoin(Child, Child.id == AuditEvent.child_id)
            .where(and_(true(), *conditions)).order_by(AuditEvent.id.desc()))
    count = db.select(db.func.count()).select_from(AuditEvent).where(and_(true(), *conditions))
    actions = db.session.execute(db.select(AuditEvent.action).where(conditions[0]).distinct()
                                 .order_by(AuditEvent.action)).scalars().all()
    return render("audit.html", title=gettext("Audit log"), page=paginate(stmt, "web.audit_log", count_stmt=count),
                  action=action, username=username, case_code=case_code, since=since, until=until,
                  actions=actions)
