"""What every page shares when it renders: the navigation per role, template filters, the acting
user as a domain ``Actor``, and loading a child the user may see (404 otherwise)."""

import uuid
from datetime import date, datetime

from flask import abort, g, render_template

from models import Actor, Child, db
from models.access import can_see_child
from models.lifecycle import phase_of
from server.web import bp

# (endpoint, label, roles that see it). Admins see no child data; analysts see reports only (DESIGN §7).
NAV = (
    ("web.dashboard", "Dashboard", ("manager", "caseworker")),
    ("web.children", "Children", ("manager", "caseworker")),
    ("web.followups", "Follow-ups", ("manager", "caseworker")),
    ("web.alerts", "Alerts", ("manager", "caseworker")),
    ("web.conflicts", "Conflicts", ("manager", "caseworker")),
    ("web.tracing_requests", "Tracing", ("manager", "caseworker")),
    ("web.matches", "Matches", ("manager",)),
    ("web.referrals", "Referrals", ("manager",)),
    ("web.approvals", "Approvals", ("manager",)),
    ("web.grants", "Manager grants", ("manager",)),
    ("web.devices", "Devices", ("manager", "admin")),
    ("web.users", "Users", ("admin",)),
    ("web.reports", "Reports", ("manager", "analyst")),
    ("web.audit_log", "Audit log", ("admin", "manager")),
)


def nav_items():
    from flask import current_app

    endpoints = set(current_app.view_functions)
    return [item for item in NAV if item[0] in endpoints]


def humanize(value) -> str:
    if value is None:
        return "—"
    return str(value).replace("_", " ")


def show_date(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def yes_no(value) -> str:
    return "—" if value is None else ("yes" if value else "no")


@bp.app_template_global("phase_of")
def _phase_of(stage):
    return phase_of(stage)


def render(template: str, http_status: int = 200, /, **context):
    return render_template(template, user=g.get("user"), **context), http_status


def web_actor() -> Actor:
    return Actor(user=g.user, source="web")


def parse_uuid(text) -> uuid.UUID:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        abort(404)


def load_child(child_id) -> Child:
    """The child if the signed-in user may see it; 404 otherwise so ids of others' children don't leak."""
    child = db.session.get(Child, parse_uuid(child_id))
    if child is None or not can_see_child(g.user, child):
        abort(404)
    return child


def register_filters(app) -> None:
    app.jinja_env.filters["humanize"] = humanize
    app.jinja_env.filters["show_date"] = show_date
    app.jinja_env.filters["yes_no"] = yes_no
    app.jinja_env.globals["nav_items"] = nav_items
