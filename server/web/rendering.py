"""What every page shares when it renders: the navigation per role, template filters, the acting
user as a domain ``Actor``, and loading a child the user may see (404 otherwise)."""

import uuid
from datetime import UTC, date, datetime

from babel import dates
from babel.dates import get_timezone
from flask import abort, current_app, g, render_template
from flask_babel import format_date, format_decimal, get_locale, gettext
from flask_babel import lazy_gettext as _l

from models import Actor, Child, db
from models.access import can_see_child
from models.lifecycle import phase_of
from server.web import bp

# (endpoint, label, roles that see it). Admins see no child data; analysts see reports only (DESIGN §7).
NAV = (
    ("web.dashboard", _l("Dashboard"), ("manager", "caseworker")),
    ("web.children", _l("Children"), ("manager", "caseworker")),
    ("web.followups", _l("Follow-ups"), ("manager", "caseworker")),
    ("web.alerts", _l("Alerts"), ("manager", "caseworker")),
    ("web.conflicts", _l("Conflicts"), ("manager", "caseworker")),
    ("web.tracing_requests", _l("Tracing"), ("manager", "caseworker")),
    ("web.matches", _l("Matches"), ("manager",)),
    ("web.referrals", _l("Referrals"), ("manager",)),
    ("web.transfers", _l("Transfers"), ("manager",)),
    ("web.approvals", _l("Approvals"), ("manager",)),
    ("web.grants", _l("Manager grants"), ("manager",)),
    ("web.devices", _l("Devices"), ("manager", "admin")),
    ("web.users", _l("Users"), ("admin",)),
    ("web.reports", _l("Reports"), ("manager", "analyst")),
    ("web.audit_log", _l("Audit log"), ("admin", "manager")),
)

GRANT_WORDS = {"create": _l("new manager account"), "role": _l("role change to manager"),
               "password": _l("password reset of a manager")}
ROLE_NAMES = {"admin": _l("administrator"), "manager": _l("manager"), "caseworker": _l("caseworker"),
              "analyst": _l("analyst")}


# The controlled vocabularies (models/vocab.py, models/lifecycle.py) as people say them; ``humanize``
# shows these, in the page's language, and falls back to the value with spaces for anything else.
WORDS = {
    # stages and phases
    "identified": _l("identified"), "reception": _l("reception"), "registered": _l("registered"),
    "assessed": _l("assessed"), "tracing": _l("tracing"), "reunified": _l("reunified"),
    "follow_up": _l("follow-up"), "closure_pending": _l("closure pending"), "closed": _l("closed"),
    "missing": _l("missing"), "demobilisation": _l("demobilisation"), "trauma_support": _l("trauma support"),
    "reintegration": _l("reintegration"),
    # sexes and risk levels
    "female": _l("female"), "male": _l("male"), "other": _l("other"), "unknown": _l("unknown"),
    "high": _l("high"), "medium": _l("medium"), "low": _l("low"), "none": _l("none"),
    # alerts
    "info": _l("info"), "warning": _l("warning"), "urgent": _l("urgent"), "open": _l("open"),
    "acknowledged": _l("acknowledged"), "resolved": _l("resolved"), "live": _l("open or acknowledged"),
    "all": _l("all"), "visit_due_soon": _l("visit due soon"), "visit_due": _l("visit due today"),
    "visit_overdue": _l("visit overdue"), "visit_escalated": _l("visit overdue, escalated"),
    "plan_review_due_soon": _l("plan review due soon"), "plan_review_due": _l("plan review due today"),
    "plan_review_overdue": _l("plan review overdue"), "plan_review_escalated": _l("plan review overdue, escalated"),
    "assessment_due_soon": _l("assessment due soon"), "assessment_due": _l("assessment due"),
    "assessment_overdue": _l("assessment overdue"), "assessment_escalated": _l("assessment overdue, escalated"),
    "reception_warn": _l("reception stay nearing its limit"), "reception_overdue": _l("reception stay past its limit"),
    "reception_escalated": _l("reception stay well past its limit, escalated"),
    "missed_in_row": _l("visits missed in a row"), "closure_eligible": _l("closure may be proposed"),
    "danger_reported": _l("danger reported at a visit"), "consent_adult": _l("consent to seek again as an adult"),
    "referral_overdue": _l("referral without an answer"),
    # follow-ups
    "visit": _l("visit"), "plan_review": _l("plan review"), "missed": _l("missed"),
    "reception_review": _l("reception review"), "scheduled": _l("scheduled"), "done": _l("done"),
    "cancelled": _l("cancelled"),
    # tracing requests, their traces and matches
    "matched": _l("matched"), "mother": _l("mother"), "father": _l("father"), "grandparent": _l("grandparent"),
    "sibling": _l("sibling"), "aunt_uncle": _l("aunt or uncle"), "other_relative": _l("other relative"),
    "guardian": _l("guardian"), "radio_announcement": _l("radio announcement"), "home_visit": _l("home visit"),
    "community_meeting": _l("community meeting"), "phone_call": _l("phone call"),
    "photo_tracing": _l("photo tracing"), "letter": _l("letter"), "pending": _l("pending"),
    "confirmed": _l("confirmed"), "dismissed": _l("dismissed"),
    # referrals and partner agencies
    "proposed": _l("proposed"), "sent": _l("sent"), "accepted": _l("accepted"), "declined": _l("declined"),
    "completed": _l("completed"), "closed_without_service": _l("closed without service"), "ngo": _l("NGO"),
    "unicef_partner": _l("UNICEF partner"), "probation_social_welfare": _l("probation and social welfare"),
    "health_centre": _l("health centre"), "school": _l("school"), "vocational_centre": _l("vocational centre"),
    # transfers and consent overrides
    "withdrawn": _l("withdrawn"), "transfer": _l("transfer"), "referral": _l("referral"),
    "reporting": _l("reporting"), "services": _l("services"), "tracing.link": _l("tracing link"),
    "tracing.verify": _l("family verification"),
    # age bands
    "under_15": _l("under 15"), "15_17": _l("15–17"), "18_plus": _l("18 and over"),
}


def nav_items():
    endpoints = set(current_app.view_functions)
    return [item for item in NAV if item[0] in endpoints]


def humanize(value) -> str:
    if value is None:
        return "—"
    return str(WORDS.get(value) or str(value).replace("_", " "))


def word_choice(value) -> tuple[str, str]:
    """(value, its words) for a select's options."""
    return value, humanize(value)


def show_date(value) -> str:
    """A moment in the programme's time zone, saying which ("3 Dec 2026, 14:05 EAT"); a day as a day.
    Stored times are UTC (naive ones too)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        here = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(
            get_timezone(current_app.config["TIME_ZONE"]))
        return f"{dates.format_datetime(here, 'd MMM y, HH:mm', tzinfo=here.tzinfo, locale=get_locale())} " \
               f"{here.tzname()}"
    if isinstance(value, date):
        return format_date(value, "d MMM y")
    return str(value)


def show_number(value) -> str:
    return "—" if value is None else format_decimal(value)


def yes_no(value) -> str:
    return "—" if value is None else (gettext("yes") if value else gettext("no"))


def field_label(name) -> str:
    """A record field as people say it (the forms' labels)."""
    from server.web.forms import LABELS

    return str(LABELS.get(name) or humanize(name))


def role_name(role) -> str:
    return str(ROLE_NAMES.get(role, role))


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
    app.jinja_env.filters["show_number"] = show_number
    app.jinja_env.filters["role_name"] = role_name
    app.jinja_env.filters["word_choice"] = word_choice
    app.jinja_env.filters["role_choice"] = lambda role: (role, role_name(role))
    app.jinja_env.filters["field_label"] = field_label
    app.jinja_env.filters["grant_words"] = lambda kind: str(GRANT_WORDS.get(kind, kind))
    app.jinja_env.globals["nav_items"] = nav_items
