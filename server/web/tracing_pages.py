"""Family tracing on the manager web (issue 14): the requests, one request with its traces and links,
the match review queue and one match side by side. Same domain functions as server/api/tracing.py.

Managers see every request, the queue and the links; a caseworker the requests they follow. Every page
that shows a request or a match is audited.
"""

import uuid

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

from models import Child, User, audit, db
from models.access import match_visible, matches_in_scope, sees_restricted
from models.errors import Problem
from models.matching import STATUSES, MatchCandidate, decide
from models.merging import default_survivor, merge_match
from models.sensitivity import RESTRICTED, sensitivity_of
from models.tracing import (
    RELATIONSHIPS,
    REQUEST_STATUSES,
    TRACE_KINDS,
    TraceFields,
    TracingLink,
    TracingRequest,
    TracingRequestFields,
    VerificationFields,
    add_trace,
    can_see_request,
    create_request,
    links_of,
    request_scope,
    traces_of,
    update_request,
    verify,
)
from models.vocab import SEXES
from server.api.common import commit_and_plan, match_after_commit, today
from server.web import bp
from server.web.child_pages import STALE, caseworker_choices
from server.web.forms import errors_of, form_values, load
from server.web.paging import paginate
from server.web.rendering import load_child, parse_uuid, render
from server.web.session import login_required
from server.whole_numbers import whole_number

REQUEST_FIELDS = ("inquirer_name", "inquirer_relationship", "inquirer_contact", "given_name", "family_name",
                  "other_names", "sex", "birth_year", "separation_date", "separation_place", "district",
                  "sub_county", "parish", "village", "armed_group", "notes")
LABELS = {"inquirer_name": _l("Name of the person asking"), "inquirer_relationship": _l("Relationship to the child"),
          "inquirer_contact": _l("How to reach them"), "given_name": _l("Child's given name"),
          "family_name": _l("Child's family name"), "other_names": _l("Other names, aliases"),
          "sex": _l("Child's sex"), "birth_year": _l("Year of birth (approximate)"),
          "separation_date": _l("Date of separation"), "separation_place": _l("Place of separation"),
          "district": _l("District"), "sub_county": _l("Sub-county"), "parish": _l("Parish"),
          "village": _l("Village"), "armed_group": _l("Armed group (restricted)"), "notes": _l("Notes")}
CHOICES = {"inquirer_relationship": RELATIONSHIPS, "sex": SEXES}
MATCH_KINDS = {"request_child": _l("tracing request ↔ child"), "child_child": _l("possible duplicate registration")}
# The side-by-side view of a match: the fields matching compares.
COMPARED = ("given_name", "family_name", "other_names", "sex", "birth_year", "district", "sub_county",
            "parish", "village")


def _fields(user) -> tuple[str, ...]:
    return tuple(n for n in REQUEST_FIELDS if sees_restricted(user) or sensitivity_of(TracingRequest, n) != RESTRICTED)


def load_request(request_id) -> TracingRequest:
    record = db.session.get(TracingRequest, parse_uuid(request_id))
    if record is None or not can_see_request(g.user, record):
        abort(404)
    return record


@bp.get("/tracing")
@login_required("manager", "caseworker")
def tracing_requests():
    status = request.args.get("status") if request.args.get("status") in REQUEST_STATUSES else None
    stmt = (db.select(TracingRequest.id, TracingRequest.status, TracingRequest.sex, TracingRequest.birth_year,
                      TracingRequest.district, TracingRequest.created_at, User.username)
            .outerjoin(User, User.id == TracingRequest.caseworker_id).where(request_scope(g.user)))
    if status:
        stmt = stmt.where(TracingRequest.status == status)
    page = paginate(stmt.order_by(TracingRequest.created_at.desc(), TracingRequest.id), "web.tracing_requests",
                    status=status)
    return render("tracing_requests.html", title=gettext("Tracing requests"), page=page, status=status,
                  statuses=REQUEST_STATUSES)


def request_form_page(status=200, *, errors=None, form=None, record=None):
    return render("tracing_request_form.html", status, title=gettext("New tracing request"), errors=errors or {},
                  form=form or {}, fields=_fields(g.user), labels=LABELS, choices=CHOICES,
                  caseworkers=caseworker_choices() if g.user.is_manager else [], record=record)


@bp.get("/tracing/new")
@login_required("manager", "caseworker")
def tracing_new():
    return request_form_page()


def _request_data(names, *, partial: bool) -> dict:
    data = form_values(request.form, (*names, "caseworker") if g.user.is_manager else names)
    if g.user.role == "caseworker" and not partial:
        data["caseworker"] = g.user.username  # a caseworker opens requests into their own caseload
    return load(TracingRequestFields(partial=partial), data)


@bp.post("/tracing/new")
@login_required("manager", "caseworker")
def tracing_create():
    try:
        record = create_request(_request_data(_fields(g.user), partial=False), g.user, "web")
    except Problem as exc:
        db.session.rollback()
        return request_form_page(422, errors=errors_of(exc), form=request.form)
    audit("tracing_request.create", actor=g.user, target=record.id, via="web")
    db.session.commit()
    match_after_commit(request_ids=[record.id])
    flash(gettext("Tracing request opened. Possible matches go to the review queue."), "success")
    return redirect(url_for("web.tracing_request", request_id=record.id))


def request_page(record, status=200, *, errors=None, form=None):
    manager = g.user.is_manager
    links = links_of(request_id=record.id) if manager else []
    codes = dict(db.session.execute(db.select(Child.id, Child.case_code)
                                    .where(Child.id.in_([found.child_id for found in links]))).all())
    candidates = db.session.execute(
        db.select(MatchCandidate, Child.case_code).join(Child, Child.id == MatchCandidate.child_id)
        .where(MatchCandidate.request_id == record.id, MatchCandidate.status == "pending")
        .order_by(MatchCandidate.score.desc())).all() if manager else []
    audit("tracing_request.read", actor=g.user, target=record.id, via="web", ip=request.remote_addr,
          children=[found.child_id for found in links] + [c.child_id for c, _ in candidates])
    page = render("tracing_request.html", status, title=gettext("Tracing request"), record=record,
                  fields=_fields(g.user), labels=LABELS, choices=CHOICES, traces=traces_of(record),
                  trace_kinds=TRACE_KINDS, links=links, codes=codes, candidates=candidates,
                  statuses=REQUEST_STATUSES, errors=errors or {}, form=form or {}, today=today(),
                  caseworkers=caseworker_choices() if manager else [],
                  record_values={name: getattr(record, name) for name in (*REQUEST_FIELDS, "status")})
    db.session.commit()
    return page


@bp.get("/tracing/<request_id>")
@login_required("manager", "caseworker")
def tracing_request(request_id):
    return request_page(load_request(request_id))


def _failed(record, form_name, exc: Problem):
    db.session.rollback()
    record = db.session.get(TracingRequest, record.id)
    return request_page(record, 422, errors={form_name: errors_of(exc)}, form={form_name: request.form})


@bp.post("/tracing/<request_id>/edit")
@login_required("manager", "caseworker")
def tracing_edit(request_id):
    record = load_request(request_id)
    if whole_number(request.form.get("version")) != record.version:
        return request_page(record, 409, errors={"edit": {"_form": [STALE]}})
    try:
        data = _request_data((*_fields(g.user), "status"), partial=True)
        changed = update_request(record, data, g.user, "web")
    except Problem as exc:
        return _failed(record, "edit", exc)
    audit("tracing_request.update", actor=g.user, target=record.id, fields=changed, via="web")
    db.session.commit()
    match_after_commit(request_ids=[record.id])
    flash(ngettext("Saved %(num)d change.", "Saved %(num)d changes.", len(changed)) if changed
          else gettext("Nothing changed."), "success")
    return redirect(url_for("web.tracing_request", request_id=record.id))


@bp.post("/tracing/<request_id>/traces")
@login_required("manager", "caseworker")
def tracing_trace(request_id):
    record = load_request(request_id)
    try:
        trace = add_trace(record, load(TraceFields(), form_values(request.form, ("kind", "done_on", "note"))), g.user, "web")
    except Problem as exc:
        return _failed(record, "trace", exc)
    audit("trace.create", actor=g.user, target=record.id, kind=trace.kind, via="web")
    db.session.commit()
    flash(gettext("Trace recorded."), "success")
    return redirect(url_for("web.tracing_request", request_id=record.id))


@bp.post("/tracing/links/<link_id>/verify")
@login_required("manager")
def tracing_verify(link_id):
    found = db.session.get(TracingLink, parse_uuid(link_id))
    if found is None:
        abort(404)
    load_child(found.child_id)  # 404 for a child out of the manager's reach
    record = db.session.get(TracingRequest, found.request_id)
    try:
        data = load(VerificationFields(), form_values(request.form, ("verified_on", "note", "override_reason")))
        verify(found, verified_on=data["verified_on"], note=data.get("note"), by=g.user, today=today(),
               override_reason=data.get("override_reason"))
    except Problem as exc:
        return _failed(record, f"verify-{found.id}", exc)
    audit("tracing_link.verify", actor=g.user, child_id=found.child_id, target=record.id, via="web")
    db.session.commit()
    flash(gettext("Family verified: the child can be reunified."), "success")
    return redirect(url_for("web.tracing_request", request_id=record.id))


@bp.get("/matches")
@login_required("manager")
def matches():
    status = request.args.get("status") if request.args.get("status") in STATUSES else "pending"
    other = db.aliased(Child)
    stmt = (db.select(MatchCandidate, Child.case_code, other.case_code)
            .join(Child, Child.id == MatchCandidate.child_id)
            .outerjoin(other, other.id == MatchCandidate.other_child_id)
            .where(MatchCandidate.status == status, matches_in_scope(g.user))
            .order_by(MatchCandidate.score.desc(), MatchCandidate.id))
    count = db.select(db.func.count()).select_from(MatchCandidate).where(MatchCandidate.status == status,
                                                                          matches_in_scope(g.user))
    page = paginate(stmt, "web.matches", count_stmt=count, status=status)
    audit("match.list", actor=g.user, via="web", ip=request.remote_addr,
          children=[i for c, _, _ in page.items for i in (c.child_id, c.other_child_id) if i])
    db.session.commit()
    return render("matches.html", title=gettext("Matches to review"), page=page, status=status, statuses=STATUSES,
                  kinds=MATCH_KINDS)


def load_match(match_id) -> MatchCandidate:
    candidate = db.session.get(MatchCandidate, parse_uuid(match_id))
    if candidate is None or not match_visible(g.user, candidate):
        abort(404)
    return candidate


@bp.get("/matches/<match_id>")
@login_required("manager")
def match(match_id):
    candidate = load_match(match_id)
    left = (db.session.get(TracingRequest, candidate.request_id) if candidate.request_id
            else db.session.get(Child, candidate.child_id))
    right = db.session.get(Child, candidate.other_child_id or candidate.child_id)
    audit("match.read", actor=g.user, target=candidate.id, via="web", ip=request.remote_addr,
          children=[i for i in (candidate.child_id, candidate.other_child_id) if i])
    db.session.commit()
    mergeable = (candidate.kind == "child_child" and candidate.status != "dismissed"
                 and left.merged_into is None and right.merged_into is None
                 and left.deleted_at is None and right.deleted_at is None)
    return render("match.html", title=gettext("Match"), candidate=candidate, left=left, right=right, compared=COMPARED,
                  kinds=MATCH_KINDS, mergeable=mergeable,
                  older=default_survivor(left, right) if candidate.kind == "child_child" else None)


@bp.post("/matches/<match_id>/merge")
@login_required("manager")
def match_merge(match_id):
    """Confirm (if pending) and merge the pair into the child chosen on the form (models.merging)."""
    candidate = load_match(match_id)
    try:
        result = merge_match(candidate, _form_uuid("survivor"), g.user, source="web")
    except Problem as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("web.match", match_id=candidate.id))
    audit("match.confirm", actor=g.user, target=candidate.id, via="web", merged=True,
          children=[candidate.child_id, candidate.other_child_id])
    survivor, absorbed = result.survivor, result.absorbed
    commit_and_plan(survivor.id)
    flash(gettext("Case %(absorbed)s was merged into %(survivor)s: %(count)s records moved.",
                  absorbed=absorbed.case_code, survivor=survivor.case_code, count=sum(result.moved.values())),
          "success")
    if result.conflict is not None:
        flash(ngettext("%(num)d field differs between the two registrations: choose on the conflicts page.",
                       "%(num)d fields differ between the two registrations: choose on the conflicts page.",
                       len(result.conflict.fields)), "warning")
    if result.absorbed_stage:
        flash(gettext("Case %(absorbed)s was at stage %(stage)s; %(survivor)s keeps its own stage. Move it if "
                      "needed.", absorbed=absorbed.case_code, stage=result.absorbed_stage,
                      survivor=survivor.case_code), "warning")
    return redirect(url_for("web.child", child_id=survivor.id))


def _form_uuid(name):
    text = request.form.get(name) or ""
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return text  # matches neither child: merge_match says which are allowed


def merged_case(child_id):
    """A merged child's page (models.merging): managers are sent to the case it was merged into; for
    everyone else it is gone like any deleted child (404)."""
    child = db.session.get(Child, parse_uuid(child_id))
    if child is None or child.merged_into is None or not g.user.is_manager:
        return None
    survivor = db.session.get(Child, child.merged_into)
    flash(gettext("Case %(absorbed)s was merged into %(survivor)s.", absorbed=child.case_code,
                  survivor=survivor.case_code), "info")
    return redirect(url_for("web.child", child_id=survivor.id))


@bp.post("/matches/<match_id>/<any(confirm, dismiss):choice>")
@login_required("manager")
def match_decide(match_id, choice):
    candidate = load_match(match_id)
    try:
        decide(candidate, choice, g.user, override_reason=request.form.get("override_reason"))
    except Problem as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("web.match", match_id=candidate.id))
    audit(f"match.{choice}", actor=g.user, target=candidate.id, via="web",
          children=[i for i in (candidate.child_id, candidate.other_child_id) if i])
    db.session.commit()
    if choice == "dismiss":
        flash(gettext("Match dismissed; this pair will not be proposed again."), "success")
    elif candidate.request_id:
        flash(gettext("Match confirmed. Verify the family on the request's page before reunifying."), "success")
    else:
        flash(gettext("Match confirmed. The two registrations are linked as one child; they can still be "
                      "merged from the match's page."), "success")
    if choice == "confirm" and candidate.request_id:
        return redirect(url_for("web.tracing_request", request_id=candidate.request_id))
    return redirect(url_for("web.matches"))


def tracing_timeline(child) -> list[dict]:
    """Links to family requests and their verification, for the child's timeline."""
    items = []
    for found in links_of(child_id=child.id):
        items.append({"on": found.created_at.date(), "at": found.created_at, "kind": "tracing",
                      "text": "linked to a family tracing request", "detail": None})
        if found.verified_on:
            items.append({"on": found.verified_on, "at": found.created_at, "kind": "tracing",
                          "text": "family verified", "detail": found.verification_note})
    return items
