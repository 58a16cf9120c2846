"""Closure approvals: children whose closure was proposed, to approve (→ closed, with the reason) or
send back to follow-up with a written reason. Both are stage transitions through the domain."""

from flask import flash, g, redirect, request, url_for
from sqlalchemy import func

from models import Alert, Child, Followup, StageTransition, User, audit, db
from models.access import child_scope
from models.errors import FieldErrors, Problem
from models.records import transition
from models.schemas import api_schema
from models.vocab import CLOSURE_REASONS
from server.api.common import commit_and_plan, rules, today
from server.web import bp
from server.web.forms import errors_of, form_values, load
from server.web.paging import paginate
from server.web.rendering import load_child, render, web_actor
from server.web.session import login_required


def pending_page():
    stmt = (
        db.select(Child.id, Child.case_code, Child.given_name, Child.family_name, Child.village, Child.district,
                  Child.risk_level, Child.stage_since, User.username.label("caseworker"))
        .outerjoin(User, User.id == Child.caseworker_id)
        .where(Child.stage == "closure_pending", Child.deleted_at.is_(None), child_scope(g.user))
        .order_by(Child.stage_since, Child.case_code)
    )
    count = db.select(func.count()).select_from(Child).where(Child.stage == "closure_pending",
                                                             Child.deleted_at.is_(None), child_scope(g.user))
    page = paginate(stmt, "web.approvals", count_stmt=count)
    # The proposal is the newest transition into closure_pending of each child on this page: one
    # query for the page (by the indexed child_id), not one per child.
    proposer = db.aliased(User)
    proposals = {}
    rows = db.session.execute(
        db.select(StageTransition.child_id, StageTransition.reason, proposer.username)
        .outerjoin(proposer, proposer.id == StageTransition.actor_id)
        .where(StageTransition.child_id.in_([row.id for row in page.items]),
               StageTransition.to_stage == "closure_pending")
        .order_by(StageTransition.created_at)
    ).all()
    for child_id, reason, username in rows:
        proposals[child_id] = (reason, username)  # the newest wins
    ids = [row.id for row in page.items]
    # An alert is raised once per recipient: count each (rule, due day) once per child.
    alerts = (db.select(Alert.child_id, Alert.rule, Alert.due_on)
              .where(Alert.child_id.in_(ids), Alert.status != "resolved", Alert.deleted_at.is_(None))
              .distinct().subquery())
    open_alerts = dict(db.session.execute(
        db.select(alerts.c.child_id, func.count()).group_by(alerts.c.child_id)).all())
    last_visits = dict(db.session.execute(
        db.select(Followup.child_id, func.max(Followup.completed_on))
        .where(Followup.child_id.in_(ids), Followup.kind == "visit", Followup.status == "done",
               Followup.deleted_at.is_(None)).group_by(Followup.child_id)
    ).all())
    page.items = [{**row._asdict(), "reason": proposals.get(row.id, (None, None))[0],
                   "proposed_by": proposals.get(row.id, (None, None))[1],
                   "open_alerts": open_alerts.get(row.id, 0), "last_visit": last_visits.get(row.id)}
                  for row in page.items]
    return page


@bp.get("/approvals")
@login_required("manager")
def approvals(errors=None, form=None, status=200):
    page = pending_page()
    html = render("approvals.html", status, title="Approvals", page=page, reasons=CLOSURE_REASONS,
                  today=today(), errors=errors or {}, form=form or {})
    # The proposals' free-text reasons are personal values: the page is audited like a list.
    audit("closure.list", actor=g.user, children=[row["id"] for row in page.items], via="web",
          ip=request.remote_addr)
    db.session.commit()
    return html


@bp.post("/approvals/<child_id>")
@login_required("manager")
def approval_decide(child_id):
    child = load_child(child_id)
    decision = request.form.get("decision")
    data = form_values(request.form, ("closure_reason", "reason"))
    key = f"{decision}-{child.id}"
    if child.stage != "closure_pending":
        flash(f"{child.case_code} is no longer waiting for approval (now {child.stage.replace('_', ' ')}).",
              "error")
        return redirect(url_for("web.approvals"))
    try:
        # Through the transition schema, as a move on the child page: the same limits on every path.
        data = load(api_schema("stage_transition", partial=True), data)
        if decision == "approve":
            record = transition(child, "closed", web_actor(), occurred_on=today(), today=today(),
                                closure_reason=data.get("closure_reason"), reason=data.get("reason"),
                                min_follow_up_days=rules()["MIN_FOLLOW_UP_DAYS"])
        elif decision == "send_back":
            if not data.get("reason"):
                raise FieldErrors({"reason": ["Say why the closure is sent back, for the caseworker."]})
            record = transition(child, "follow_up", web_actor(), occurred_on=today(), today=today(),
                                reason=data["reason"], min_follow_up_days=rules()["MIN_FOLLOW_UP_DAYS"])
        else:
            raise Problem("validation_error", "Choose approve or send back.")
    except Problem as exc:
        db.session.rollback()
        return approvals(errors={key: errors_of(exc)}, form={key: request.form}, status=422)
    audit("child.closure_" + ("approved" if decision == "approve" else "sent_back"), actor=g.user,
          child_id=child.id, to_stage=record.to_stage, via="web")
    commit_and_plan(child.id)
    flash(f"{child.case_code}: closure {'approved' if decision == 'approve' else 'sent back to follow-up'}.",
          "success")
    return redirect(url_for("web.approvals"))
