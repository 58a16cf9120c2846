"""Registering a child on the web, and adding consents, assessments, services and follow-ups to one.

The same domain operations as the JSON API and a phone's sync (``create_child``, ``create_record``),
the same schemas, the same role rules (a caseworker registers into their own caseload) and the same
audit events. One commit per form, then follow-up planning on the committed state.
"""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from models import audit, db
from models.errors import Problem
from models.records import create_child, create_record
from models.schemas import ChildFields, api_schema
from models.vocab import (
    ASSESSMENT_KINDS,
    CONSENT_GIVERS,
    CONSENT_PURPOSES,
    FOLLOWUP_KINDS,
    SERVICE_STATUSES,
    SERVICE_TYPES,
)
from server.api.common import commit_and_plan, today
from server.web import bp
from server.web.child_pages import (
    BOOLEAN_FIELDS,
    CHOICES,
    DATES,
    EDIT_FIELDS,
    RESTRICTED_FIELDS,
    caseworker_choices,
    child_page,
    district_choices,
)
from server.web.forms import LABELS, errors_of, form_values, load, typed
from server.web.rendering import load_child, render, web_actor
from server.web.session import login_required

# What registration asks, in the order of the form: the edit form's fields and the date of release.
REGISTER_FIELDS = (*EDIT_FIELDS[:EDIT_FIELDS.index("current_location")], "identified_on",
                   *EDIT_FIELDS[EDIT_FIELDS.index("current_location"):])
# The records a child page can add, with the fields each form sends (``scores`` stays API-only).
RECORD_FIELDS = {
    "consent": ("purpose", "given_by", "given_on"),
    "assessment": ("kind", "assessed_on", "risk_level", "notes"),
    "service": ("type", "provider", "status", "started_on", "ended_on", "notes"),
    "followup": ("kind", "due_on", "notes"),
}
RECORD_TITLES = {"consent": _l("Record a consent"), "assessment": _l("Record an assessment"),
                 "service": _l("Record a service or referral"), "followup": _l("Plan a follow-up")}
RECORDED = {"consent": _l("Consent recorded for %(code)s."), "assessment": _l("Assessment recorded for %(code)s."),
            "service": _l("Service recorded for %(code)s."), "followup": _l("Follow-up planned for %(code)s.")}
RECORD_CHOICES = {"purpose": CONSENT_PURPOSES, "given_by": CONSENT_GIVERS, "assessment:kind": ASSESSMENT_KINDS,
                  "type": SERVICE_TYPES, "status": SERVICE_STATUSES, "followup:kind": FOLLOWUP_KINDS}
RECORD_DATES = {"given_on", "assessed_on", "started_on", "ended_on", "due_on"}


def record_form_context() -> dict:
    """What the child page needs to draw the forms that add records."""
    return {"record_fields": RECORD_FIELDS, "record_titles": RECORD_TITLES, "record_choices": RECORD_CHOICES,
            "record_dates": RECORD_DATES}


def register_page(form, status=200, *, errors=None):
    return render("child_new.html", status, title="Register a child", fields=REGISTER_FIELDS,
                  restricted_fields=RESTRICTED_FIELDS, booleans=BOOLEAN_FIELDS, dates=DATES | {"identified_on"},
                  choices={**CHOICES, "district": district_choices()}, labels=LABELS,
                  purposes=CONSENT_PURPOSES, givers=CONSENT_GIVERS, errors=errors or {}, form=form,
                  caseworkers=registration_holders() if g.user.is_manager else [], today=today())


def registration_holders() -> list[str]:
    """A new child belongs to the registering manager's agency, or to its caseworker's when the manager
    has none (models.records.add_child): the choices follow."""
    return caseworker_choices(g.user.agency_id) if g.user.agency_id else caseworker_choices()


@bp.get("/children/new")
@login_required("manager", "caseworker")
def child_new():
    return register_page(MultiDict({"identified_on": today().isoformat()}))


@bp.post("/children/new")
@login_required("manager", "caseworker")
def child_register():
    """The child, and a consent for each purpose someone agreed to, in one transaction."""
    names = (*REGISTER_FIELDS, "caseworker", *RESTRICTED_FIELDS)
    data = form_values(request.form, names, booleans=BOOLEAN_FIELDS)
    if g.user.role == "caseworker" or not data.get("caseworker"):
        data["caseworker"] = g.user.username  # a caseworker registers into their own caseload (as the API)
    givers = {purpose: request.form.get(f"consent-{purpose}") or None for purpose in CONSENT_PURPOSES}
    try:
        data = load(ChildFields(), data)
        consents = [load(api_schema("consent"), {"purpose": purpose, "given_by": giver,
                                                 "given_on": data.get("identified_on") or today()})
                    for purpose, giver in givers.items() if giver]
        child = create_child(data, web_actor(), today=today())
        for consent in consents:
            create_record("consent", {**consent, "child_id": child.id}, web_actor())
    except Problem as exc:
        db.session.rollback()
        errors = errors_of(exc)
        if errors.keys() & {"given_by", "purpose", "given_on"}:
            errors["_form"] = [*errors.get("_form", []), gettext("A consent could not be recorded.")]
        return register_page(typed(request.form), 422, errors=errors)
    audit("child.create", actor=g.user, child_id=child.id, via="web", ip=request.remote_addr)
    for _ in consents:
        audit("consent.create", actor=g.user, child_id=child.id, via="web", ip=request.remote_addr)
    commit_and_plan(child.id)
    flash(gettext("Registered %(code)s.", code=child.case_code), "success")
    return redirect(url_for("web.child", child_id=child.id))


@bp.post("/children/<child_id>/records/<entity>")
@login_required("manager", "caseworker")
def child_add_record(child_id, entity):
    child = load_child(child_id)
    if entity not in RECORD_FIELDS:
        abort(404)
    form_name = f"add-{entity}"
    data = form_values(request.form, RECORD_FIELDS[entity])
    try:
        if entity == "service" and data.get("status") is None:
            data.pop("status", None)  # the schema's default, "planned"
        data = load(api_schema(entity), data)
        record = create_record(entity, {**data, "child_id": child.id}, web_actor())
    except Problem as exc:
        db.session.rollback()
        return child_page(db.session.get(type(child), child.id), 422, errors={form_name: errors_of(exc)},
                          form={form_name: typed(request.form)})
    audit(f"{entity}.create", actor=g.user, child_id=child.id, target=record.id, via="web", ip=request.remote_addr)
    commit_and_plan(child.id)
    flash(str(RECORDED[entity]) % {"code": child.case_code}, "success")
    return redirect(url_for("web.child", child_id=child.id))

