"""Sync conflicts: for each disputed field the value at the device's base version, the server's and
the device's, side by side; a manager or the child's caseworker keeps one per field. The resolution
is applied by the sync work's ``resolve_conflict`` so it reaches every device on its next pull."""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext

from models import Child, Device, User, audit, db
from models.access import sees_restricted
from models.errors import Problem
from models.syncstate import Conflict
from server.api.common import commit_and_plan
from server.web import bp
from server.web.forms import errors_of
from server.web.paging import paginate
from server.web.rendering import parse_uuid, render, web_actor
from server.web.session import login_required
from sync.conflicts import (
    conflicts_query,
    fields_hidden_from,
    get_conflict,
    resolve_conflict,
    restricted_fields,
)

SIDES = ("server", "device")


def open_conflicts_query(user):
    return conflicts_query(user, status="open").with_only_columns(Conflict.id).order_by(None)


def conflict_summary(conflict: Conflict) -> dict:
    """A timeline entry for the child page."""
    return {"on": conflict.created_at.date(), "at": conflict.created_at, "kind": "conflict",
            "text": f"sync conflict on {conflict.entity.replace('_', ' ')}: {', '.join(conflict.fields)} "
                    f"({conflict.status})",
            "detail": None, "href": url_for("web.conflict", conflict_id=conflict.id)}


@bp.get("/conflicts")
@login_required("manager", "caseworker")
def conflicts():
    status = "resolved" if request.args.get("status") == "resolved" else "open"
    device_owner = db.aliased(User)
    stmt = (conflicts_query(g.user, status=status)
            .add_columns(Child.case_code, Device.label, device_owner.username)
            .outerjoin(Device, Device.id == Conflict.device_id)
            .outerjoin(device_owner, device_owner.id == Conflict.user_id))
    count = conflicts_query(g.user, status=status).with_only_columns(db.func.count()).order_by(None)
    return render("conflicts.html", title=gettext("Conflicts"), page=paginate(stmt, "web.conflicts", count_stmt=count),
                  status=status)


def load_conflict(conflict_id) -> tuple[Conflict, Child]:
    conflict = get_conflict(g.user, parse_uuid(conflict_id))
    if conflict is None:
        abort(404)
    return conflict, db.session.get(Child, conflict.child_id)


def conflict_page(conflict, child, status=200, errors=None):
    device = db.session.get(Device, conflict.device_id) if conflict.device_id else None
    page = render("conflict.html", status, title=gettext("Conflict on %(code)s", code=child.case_code), conflict=conflict,
                  child=child, device=device, hidden=fields_hidden_from(g.user, conflict), errors=errors or {})
    audit("conflict.read", actor=g.user, child_id=child.id, target=conflict.id, via="web", ip=request.remote_addr)
    db.session.commit()
    return page


@bp.get("/conflicts/<conflict_id>")
@login_required("manager", "caseworker")
def conflict(conflict_id):
    conflict, child = load_conflict(conflict_id)
    return conflict_page(conflict, child)


@bp.post("/conflicts/<conflict_id>")
@login_required("manager", "caseworker")
def conflict_resolve(conflict_id):
    conflict, child = load_conflict(conflict_id)
    if conflict.status != "open":
        flash(gettext("This conflict was already resolved."), "info")
        return redirect(url_for("web.conflict", conflict_id=conflict.id))
    if restricted_fields(conflict) and not sees_restricted(g.user):
        # Someone who cannot see the values cannot choose between them.
        return conflict_page(conflict, child, 403, {"_form": [gettext(
            "This conflict includes restricted fields: a manager resolves it.")]})
    choices, missing = {}, []
    for name in conflict.fields:
        choice = request.form.get(f"field:{name}")
        if choice not in SIDES:
            missing.append(name)
        choices[name] = choice
    if missing:
        return conflict_page(conflict, child, 422, {name: [gettext("Choose which value to keep.")] for name in missing})
    try:
        resolve_conflict(conflict, choices, web_actor())
    except Problem as exc:
        db.session.rollback()
        conflict, child = load_conflict(conflict_id)
        return conflict_page(conflict, child, 422, errors_of(exc))
    audit("conflict.resolve", actor=g.user, child_id=child.id, target=conflict.id,
          kept={k: v for k, v in choices.items()}, via="web")
    commit_and_plan(child.id)
    flash(gettext("Conflict on %(code)s resolved.", code=child.case_code), "success")
    return redirect(url_for("web.conflicts"))
