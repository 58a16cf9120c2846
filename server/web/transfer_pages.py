"""Inter-agency transfers on the web: the *Transfers* section of the child's page (the history, the
form a manager of the child's agency proposes one with, the consent overrides), the buttons that
decide one, and the managers' list of transfers coming to their agency (``/transfers``)."""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext

from models import Child, User, audit, db
from models.agencies import Agency
from models.consent_gates import overrides_of
from models.errors import Problem
from models.transfers import (
    STEP_SIDE,
    Transfer,
    can_see_transfer,
    decide_transfer,
    incoming_transfers,
    pending_transfer,
    propose_transfer,
    transfers_of,
)
from server.api.common import commit_and_plan, today
from server.web import bp
from server.web.child_pages import child_page
from server.web.forms import errors_of, form_values
from server.web.rendering import humanize, load_child, parse_uuid, render
from server.web.session import login_required


@bp.app_template_global("transfers_of_child")
def transfers_of_child(child) -> dict:
    """What ``_transfers.html`` shows on the child's page (whose read is audited as ``child.read``)."""
    user, items, overrides = g.user, transfers_of(child.id), overrides_of(child.id)
    of_owner = user.role == "manager" and user.agency_id == child.agency_id
    agencies = db.session.execute(db.select(Agency).where(Agency.active.is_(True)).order_by(Agency.name)).scalars()
    return {"items": items, "overrides": overrides, "names": _usernames(items, overrides),
            "agencies": [(str(a.id), a.name) for a in agencies if a.id != child.agency_id],
            "may_propose": of_owner and pending_transfer(child.id) is None, "may_withdraw": of_owner,
            "owner": db.session.get(Agency, child.agency_id) if child.agency_id else None}


def _usernames(transfers, overrides) -> dict:
    """Who proposed, decided or overrode, by id: one query."""
    ids = {t.proposed_by_id for t in transfers} | {t.decided_by_id for t in transfers} | {o.actor_id for o in overrides}
    ids.discard(None)
    if not ids:
        return {}
    return dict(db.session.execute(db.select(User.id, User.username).where(User.id.in_(ids))).all())


def transfer_timeline(child) -> list[dict]:
    """The child's timeline entries for its transfers: proposed, then the decision."""
    transfers = transfers_of(child.id)
    names = _usernames(transfers, [])
    items = []
    for t in transfers:
        items.append({"on": t.proposed_on, "at": t.proposed_at, "kind": "transfer",
                      "text": f"transfer to {t.to_agency.name} proposed", "detail": None,
                      "by": names.get(t.proposed_by_id)})
        if t.decided_on:
            items.append({"on": t.decided_on, "at": t.decided_at, "kind": "transfer",
                          "text": f"transfer to {t.to_agency.name} {t.status}", "detail": None,
                          "by": names.get(t.decided_by_id)})
    return items


@bp.post("/children/<child_id>/transfers")
@login_required("manager")
def transfer_create(child_id):
    child = load_child(child_id)
    data = form_values(request.form, ("to_agency_id", "reason", "override_reason"))
    try:
        propose_transfer(child, data, g.user, today=today())
    except Problem as exc:
        db.session.rollback()
        return child_page(db.session.get(Child, child.id), 422, errors={"transfer": errors_of(exc)},
                          form={"transfer": request.form})
    db.session.commit()
    flash(gettext("Transfer proposed: a manager of the receiving agency accepts or declines it."), "success")
    return redirect(url_for("web.child", child_id=child.id) + "#h-transfers")


@bp.post("/transfers/<transfer_id>/decision")
@login_required("manager")
def transfer_decide(transfer_id):
    transfer = db.session.get(Transfer, parse_uuid(transfer_id))
    child = db.session.get(Child, transfer.child_id) if transfer else None
    if transfer is None or child is None or not can_see_transfer(g.user, transfer, child):
        abort(404)
    status = request.form.get("status", "")
    try:
        decide_transfer(transfer, status, g.user, today=today(), note=request.form.get("note"))
    except Problem as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("web.transfers"))
    commit_and_plan(child.id)
    flash(gettext("Transfer %(status)s.", status=humanize(status)), "success")
    if status == "accepted":  # the receiving manager now assigns a caseworker, on the child's page
        return redirect(url_for("web.child", child_id=child.id))
    return redirect(url_for("web.transfers") if STEP_SIDE.get(status) == "receiving"
                    else url_for("web.child", child_id=child.id) + "#h-transfers")


@bp.get("/transfers")
@login_required("manager")
def transfers():
    """Transfers waiting for an answer from the manager's agency, oldest first."""
    rows = [(t, db.session.get(Child, t.child_id)) for t in incoming_transfers(g.user)]
    audit("transfer.read", actor=g.user, children=[t.child_id for t, _ in rows], via="web", ip=request.remote_addr)
    db.session.commit()
    return render("transfers.html", title=gettext("Incoming transfers"), rows=rows,
                  has_agency=g.user.agency_id is not None)
