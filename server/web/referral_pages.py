"""Referrals on the web: the "Refer" form and the list on the child's page (``_referrals.html``),
a button per allowed step, and the managers' page of open referrals."""

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from models import Child, audit, db
from models.access import child_scope
from models.agencies import Agency
from models.errors import Problem
from models.referrals import (
    NEXT_STEPS,
    OPEN_STATUSES,
    Referral,
    advance_referral,
    propose_referral,
    referral_form,
)
from models.vocab import SERVICE_TYPES
from server.api.common import today
from server.web import bp
from server.web.child_pages import child_page
from server.web.forms import errors_of, form_values
from server.web.rendering import humanize, load_child, parse_uuid, render
from server.web.session import login_required

FIELDS = ("service_type", "agency_id", "provider_name", "reason", "override_reason")
STEP_LABELS = {"sent": _l("Mark sent"), "accepted": _l("Accepted"), "declined": _l("Declined"),
               "completed": _l("Completed"), "closed_without_service": _l("Closed without service")}


@bp.app_template_global("referrals_of")
def referrals_of(child) -> dict:
    """What ``_referrals.html`` shows on the child's page (whose read is audited as ``child.read``)."""
    referrals = db.session.execute(db.select(Referral).where(Referral.child_id == child.id)
                                   .order_by(Referral.created_at.desc())).scalars().all()
    agencies = db.session.execute(db.select(Agency).where(Agency.active.is_(True)).order_by(Agency.name)).scalars()
    return {"items": referrals, "agencies": [(str(a.id), a.name) for a in agencies], "service_types": SERVICE_TYPES,
            "next_steps": NEXT_STEPS, "labels": STEP_LABELS}


@bp.post("/children/<child_id>/referrals")
@login_required("manager", "caseworker")
def referral_create(child_id):
    child = load_child(child_id)
    data = form_values(request.form, FIELDS)
    try:
        propose_referral(child, data, g.user, today=today())
    except Problem as exc:
        db.session.rollback()
        return child_page(db.session.get(Child, child.id), 422, errors={"referral": errors_of(exc)},
                          form={"referral": request.form})
    db.session.commit()
    flash(gettext("Referral proposed."), "success")
    return redirect(url_for("web.child", child_id=child.id) + "#h-referrals")


@bp.post("/referrals/<referral_id>/steps")
@login_required("manager", "caseworker")
def referral_step(referral_id):
    referral = db.session.get(Referral, parse_uuid(referral_id))
    child = load_child(referral.child_id if referral else None)
    try:
        advance_referral(referral, request.form.get("status", ""), g.user, today=today())
    except Problem as exc:
        db.session.rollback()
        return child_page(db.session.get(Child, child.id), 422, errors={"referral": errors_of(exc)})
    db.session.commit()
    flash(gettext("Referral %(status)s.", status=humanize(referral.status)), "success")
    return redirect(url_for("web.child", child_id=child.id) + "#h-referrals")


@bp.get("/referrals/<referral_id>/form")
@login_required("manager", "caseworker")
def referral_form_page(referral_id):
    """The printable referral form for an outside provider (models.referrals.referral_form)."""
    referral = db.session.get(Referral, parse_uuid(referral_id))
    child = load_child(referral.child_id if referral else None)
    content = referral_form(referral, child, g.user, today=today())
    db.session.commit()  # the audit of the printing
    return render("referral_form.html", title=gettext("Referral %(code)s", code=child.case_code), f=content,
                  child_id=child.id)


@bp.get("/referrals")
@login_required("manager")
def referrals():
    """The open referrals of the programme, oldest sent first: the ones waiting longest for an answer."""
    rows = db.session.execute(
        db.select(Referral, Child.case_code).join(Child, Child.id == Referral.child_id)
        .where(Referral.status.in_(OPEN_STATUSES), child_scope(g.user), Child.deleted_at.is_(None))
        .order_by(Referral.sent_on.is_(None), Referral.sent_on, Referral.created_at)).all()
    audit("referral.read", actor=g.user, children=[r.child_id for r, _ in rows], via="web", ip=request.remote_addr)
    db.session.commit()
    return render("referrals.html", title=gettext("Open referrals"), rows=rows, today=today())
