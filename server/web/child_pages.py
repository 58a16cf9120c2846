"""One child: the profile grouped by sensitivity, the timeline, and the actions the role may take.

Every action goes through the same domain functions as the JSON API (``models.records``), then
commits once and runs follow-up planning on the committed state, so devices receive the change on
their next pull exactly as if it came from the API.
"""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from models import (
    Alert,
    Assessment,
    Child,
    Consent,
    Followup,
    Service,
    StageTransition,
    User,
    audit,
    db,
    districts,
)
from models.access import may_hold, sees_restricted
from models.errors import FieldErrors, Problem
from models.lifecycle import MANAGER_ONLY, allowed_targets
from models.openrosa import extra_fields_of
from models.records import transition, update_record
from models.schemas import ChildFields, VisitOutcome, api_schema
from models.sensitivity import AGGREGATE, PERSONAL, RESTRICTED, fields_of
from models.syncstate import Conflict
from models.vocab import (
    AGE_ESTIMATION_METHODS,
    CLOSURE_REASONS,
    CONCERNS,
    HOW_LEFT,
    NOT_SEEN_REASONS,
    RISK_LEVELS,
    SEXES,
    WELLBEING,
)
from server.api.common import commit_and_plan, rules, today
from server.web import bp
from server.web.forms import LABELS, errors_of, form_values, load, tri_state, typed
from server.web.rendering import load_child, render, web_actor
from server.web.session import login_required
from server.whole_numbers import whole_number

# What the edit form offers. Restricted fields have their own form, shown to managers only.
EDIT_FIELDS = ("given_name", "family_name", "other_names", "sex", "date_of_birth", "birth_year",
               "age_estimation_method", "district", "sub_county", "parish", "village", "current_location",
               "family_contacts", "exit_place", "handed_over_by", "risk_level", "child_mother", "disability",
               "unaccompanied")
BOOLEAN_FIELDS = ("child_mother", "disability", "unaccompanied")
RESTRICTED_FIELDS = tuple(fields_of(Child, RESTRICTED))
# Bookkeeping and derived columns are shown in the case summary, not as profile fields.
HIDDEN = {"id", "seq", "deleted_at", "created_at", "updated_at", "recorded_at", "caseworker_id", "version",
          "agency_id"}  # the agency: by name, in the transfers section
CHOICES = {"sex": SEXES, "risk_level": RISK_LEVELS, "age_estimation_method": AGE_ESTIMATION_METHODS,
           "how_left": HOW_LEFT}
DATES = {"date_of_birth", "date_joined", "date_left", "identified_on", "stage_since"}


def profile_sections(child: Child, show_restricted: bool) -> list[tuple[str, str, list]]:
    sections = []
    for cls, title in ((AGGREGATE, _l("Case")), (PERSONAL, _l("Identity and family (need to know)"))):
        rows = [(name, getattr(child, name)) for name in fields_of(Child, cls) if name not in HIDDEN]
        sections.append((cls, title, rows))
    if show_restricted:
        sections.append((RESTRICTED, _l("CAAFAG profile (restricted)"),
                         [(name, getattr(child, name)) for name in RESTRICTED_FIELDS]))
    return sections


def timeline(child: Child) -> list[dict]:
    """Transitions, assessments, services, visits, alerts and conflicts, newest first: one query each."""
    items = []
    transitions = db.session.execute(
        db.select(StageTransition, User.username).outerjoin(User, User.id == StageTransition.actor_id)
        .where(StageTransition.child_id == child.id, StageTransition.deleted_at.is_(None))
    ).all()
    for t, username in transitions:
        text = f"{(t.from_stage or 'start').replace('_', ' ')} → {t.to_stage.replace('_', ' ')}"
        if t.closure_reason:
            text += f" ({t.closure_reason.replace('_', ' ')})"
        items.append({"on": t.occurred_on, "at": t.created_at, "kind": "stage", "text": text,
                      "detail": t.reason, "by": username})
    for c in _records(Consent, child):
        items.append({"on": c.given_on, "at": c.created_at, "kind": "consent",
                      "text": f"consent for {c.purpose} given by the {c.given_by}"
                              + (f", withdrawn {c.withdrawn_on.isoformat()}" if c.withdrawn_on else ""),
                      "detail": None})
    for a in _records(Assessment, child):
        items.append({"on": a.assessed_on, "at": a.created_at, "kind": "assessment",
                      "text": f"{a.kind} assessment" + (f", risk {a.risk_level}" if a.risk_level else ""),
                      "detail": a.notes})
    for s in _records(Service, child):
        items.append({"on": s.started_on or s.created_at.date(), "at": s.created_at, "kind": "service",
                      "text": f"{s.type.replace('_', ' ')}: {s.status}"
                              + (f" (ended {s.ended_on.isoformat()})" if s.ended_on else ""),
                      "detail": s.provider})
    for f in _records(Followup, child):
        if f.status == "scheduled":
            continue  # listed under "Due" with its outcome form
        seen = "" if f.seen is None else (", seen" if f.seen else f", not seen: {f.not_seen_reason or '?'}")
        items.append({"on": f.completed_on or f.due_on, "at": f.updated_at, "kind": "visit",
                      "text": f"{f.kind.replace('_', ' ')} due {f.due_on.isoformat()}: {f.status}{seen}"
                              + (f", concerns: {', '.join(f.concerns)}" if f.concerns else ""),
                      "detail": f.notes})
    for a in _records(Alert, child):
        items.append({"on": a.due_on or a.created_at.date(), "at": a.created_at, "kind": "alert",
                      "text": f"{a.severity} alert: {a.rule.replace('_', ' ')} ({a.status})", "detail": None})
    items.extend(_conflict_items(child))
    items.extend(_tracing_items(child))
    from server.web.transfer_pages import transfer_timeline  # that module builds on this one

    items.extend(transfer_timeline(child))
    items.sort(key=lambda i: (i["on"], i["at"]), reverse=True)
    return items


def _records(model, child):
    return db.session.execute(
        db.select(model).where(model.child_id == child.id, model.deleted_at.is_(None))
    ).scalars().all()


def _conflict_items(child) -> list[dict]:
    from server.web.conflict_pages import conflict_summary

    rows = db.session.execute(db.select(Conflict).where(Conflict.child_id == child.id)).scalars().all()
    return [conflict_summary(c) for c in rows]


def _tracing_items(child) -> list[dict]:
    from server.web.tracing_pages import tracing_timeline

    return tracing_timeline(child)


def due_followups(child):
    return db.session.execute(
        db.select(Followup).where(Followup.child_id == child.id, Followup.status == "scheduled",
                                  Followup.deleted_at.is_(None)).order_by(Followup.due_on)
    ).scalars().all()


def move_targets(child, user) -> list[str]:
    return [t for t in allowed_targets(child.stage)
            if (child.stage, t) not in MANAGER_ONLY or user.role == "manager"]


ANY_AGENCY = object()


def caseworker_choices(agency_id=ANY_AGENCY):
    """Active caseworkers and managers to pick from; for a child of ``agency_id``, only those who may
    hold it (models.access.may_hold), so a limited agency's staff are not offered another's child."""
    query = db.select(User.username).where(User.active.is_(True), User.role.in_(("caseworker", "manager")))
    if agency_id is not ANY_AGENCY:
        query = query.where(may_hold(agency_id))
    return db.session.execute(query.order_by(User.username)).scalars().all()


def holders_of(child) -> list[str]:
    """Whom a manager may give the child to, and whoever holds it now (kept on offer even if their
    agency limited its reach since, so the form shows the truth)."""
    names = caseworker_choices(child.agency_id)
    current = child.caseworker.username if child.caseworker else None
    return names if current is None or current in names else sorted([*names, current])


def district_choices(child=None) -> list[tuple[str, str]]:
    """The configured districts; a child's district from before the list was set stays offered, so
    saving the form leaves it as it is (``child_edit`` does not re-check an unchanged district)."""
    names = [(name, name) for name in districts.allowed()]
    if child is not None and child.district and child.district not in districts.allowed():
        names.append((child.district, f"{child.district} (not in the list)"))
    return names


def child_name(child) -> str:
    return " ".join(n for n in (child.given_name, child.family_name) if n) or gettext("Name not recorded")


def child_page(child, status=200, *, show_restricted=False, errors=None, form=None):
    """The child's page; with the restricted profile shown, an audited restricted read."""
    from server.web.record_pages import record_form_context

    errors = errors or {}
    if show_restricted:
        audit("child.restricted_read", actor=g.user, child_id=child.id, via="web", ip=request.remote_addr)
        db.session.commit()
    # Only managers and the child's caseworker reach this page, and both may see the name; the window's
    # title (kept in the browser's history, seen on a shared computer) names the case code only.
    return render(
        "child.html", status, title=gettext("Child %(code)s", code=child.case_code), child=child,
        name=child_name(child), labels=LABELS, **record_form_context(),
        sections=profile_sections(child, show_restricted), show_restricted=show_restricted,
        can_see_restricted=sees_restricted(g.user), timeline=timeline(child), due=due_followups(child),
        targets=move_targets(child, g.user), caseworkers=holders_of(child) if g.user.is_manager else [],
        errors=errors, form=form or {}, today=today(), choices={**CHOICES, "district": district_choices(child)},
        dates=DATES,
        edit_fields=EDIT_FIELDS, booleans=BOOLEAN_FIELDS, restricted_fields=RESTRICTED_FIELDS,
        closure_reasons=CLOSURE_REASONS, not_seen_reasons=NOT_SEEN_REASONS, wellbeing=WELLBEING,
        concerns=CONCERNS, risk_levels=RISK_LEVELS, extra_fields=extra_fields_of(child.id),
    )


@bp.get("/children/<child_id>")
@login_required("manager", "caseworker")
def child(child_id):
    from server.web.tracing_pages import merged_case  # issue 14; tracing_pages imports this module

    if (moved := merged_case(child_id)) is not None:
        return moved
    child = load_child(child_id)
    audit("child.read", actor=g.user, child_id=child.id, via="web", ip=request.remote_addr)
    db.session.commit()
    return child_page(child)


@bp.post("/children/<child_id>/restricted")
@login_required("manager")
def child_restricted(child_id):
    """The restricted CAAFAG profile, shown on request and audited (DESIGN §3)."""
    return child_page(load_child(child_id), show_restricted=True)


def _failed(child, form_name, exc: Problem, **kw):
    db.session.rollback()
    child = db.session.get(Child, child.id)
    return child_page(child, 422, errors={form_name: errors_of(exc)}, form={form_name: typed(request.form)}, **kw)


def _version_matches(record) -> bool:
    return whole_number(request.form.get("version")) == record.version


STALE = "Someone changed this record since you opened the page. Your change was not saved; check the " \
        "current values and make it again."


@bp.post("/children/<child_id>/move")
@login_required("manager", "caseworker")
def child_move(child_id):
    child = load_child(child_id)
    data = form_values(request.form, ("to_stage", "occurred_on", "reason", "closure_reason"))
    try:
        if not data.get("to_stage"):
            raise FieldErrors({"to_stage": [gettext("Choose the stage to move to.")]})
        data = load(api_schema("stage_transition"), data)
        record = transition(child, data.pop("to_stage"), web_actor(), today=today(),
                            min_follow_up_days=rules()["MIN_FOLLOW_UP_DAYS"], **data)
    except Problem as exc:
        return _failed(child, "move", exc)
    audit("child.transition", actor=g.user, child_id=child.id, to_stage=record.to_stage, via="web")
    commit_and_plan(child.id)
    flash(gettext("%(code)s moved to %(stage)s.", code=child.case_code, stage=record.to_stage.replace("_", " ")),
          "success")
    return redirect(url_for("web.child", child_id=child.id))


@bp.post("/children/<child_id>/edit")
@login_required("manager", "caseworker")
def child_edit(child_id):
    child = load_child(child_id)
    restricted_form = request.form.get("part") == "restricted"
    if restricted_form and not sees_restricted(g.user):
        abort(403)
    form_name = "restricted" if restricted_form else "edit"
    if not _version_matches(child):
        return child_page(child, 409, errors={form_name: {"_form": [STALE]}}, show_restricted=restricted_form)
    names = RESTRICTED_FIELDS if restricted_form else EDIT_FIELDS
    data = form_values(request.form, names, booleans=() if restricted_form else BOOLEAN_FIELDS)
    for name in ("district", "given_name"):
        if name in data and data[name] == getattr(child, name):
            # Kept as it was (a district from before HOMECOMING_DISTRICTS, a name never recorded): not
            # re-checked, so the rest of the form can still be saved.
            del data[name]
    try:
        data = load(ChildFields(partial=True), data)
        changed = update_record(child, data, web_actor())
    except Problem as exc:
        return _failed(child, form_name, exc, show_restricted=restricted_form)
    audit("child.update", actor=g.user, child_id=child.id, fields=changed, via="web")
    commit_and_plan(child.id)
    flash(f"Saved {len(changed)} change(s) to {child.case_code}." if changed else "Nothing changed.", "success")
    return redirect(url_for("web.child", child_id=child.id))


@bp.post("/children/<child_id>/reassign")
@login_required("manager")
def child_reassign(child_id):
    child = load_child(child_id)
    username = request.form.get("caseworker", "").strip() or None
    try:
        changed = update_record(child, {"caseworker": username}, web_actor())
    except Problem as exc:
        return _failed(child, "reassign", exc)
    audit("child.reassign", actor=g.user, child_id=child.id, caseworker=username, via="web")
    commit_and_plan(child.id)
    flash(f"{child.case_code} is now with {username or 'nobody'}." if changed else "Nothing changed.", "success")
    return redirect(url_for("web.child", child_id=child.id))


@bp.post("/followups/<followup_id>/outcome")
@login_required("manager", "caseworker")
def followup_outcome(followup_id):
    """Record what happened at a visit (or review): done, missed or cancelled, with the outcome."""
    from server.web.followup_pages import load_followup, visit_page

    followup, child = load_followup(followup_id)
    from_list = request.form.get("back") == "followups"
    form_name = f"outcome-{followup.id}"
    data = form_values(request.form, ("status", "completed_on", "not_seen_reason", "wellbeing", "risk_level",
                                      "concerns", "notes"), lists=("concerns",))
    data["seen"] = tri_state(request.form.get("seen"))
    try:
        data = load(VisitOutcome(), data)
        update_record(followup, data, web_actor())
    except Problem as exc:
        if from_list:
            db.session.rollback()
            return visit_page(db.session.get(Followup, followup.id), db.session.get(Child, child.id), 422,
                              errors=errors_of(exc), form=typed(request.form))
        return _failed(child, form_name, exc)
    audit("followup.outcome", actor=g.user, child_id=child.id, status=data["status"], via="web")
    commit_and_plan(child.id)
    flash(gettext("Outcome recorded for %(code)s.", code=child.case_code), "success")
    if from_list:
        return redirect(url_for("web.followups"))
    return redirect(url_for("web.child", child_id=child.id))


from server.web import attachment_pages, record_pages, summary_pages  # noqa: E402, F401  (their routes join bp with this module's)
