"""Every route of the app against every identity, with the status each must get (issue 8, "Also").

The table below is the access policy written down. The test reads ``app.url_map``: a route (and
method) missing from the table fails the test, so whoever adds a route must say here who may use it.
Columns: anonymous, admin, manager, the caseworker the child is assigned to ("own"), another
caseworker ("other"), analyst, a device token (of the own caseworker's phone, sent as the bearer on
every route), and a user disabled after signing in and taking an API token. Web pages use the web
session, ``/api`` routes the API bearer token. ``LOGIN`` is a redirect to the sign-in page.

Requests carry no valid body: a permitted write answers 400/422/428 (If-Match missing) and changes
nothing, except the harmless idempotent actions on throwaway objects (enable a spare user, revoke a
spare device, refuse a spare grant, acknowledge or resolve an alert). Paths name the own caseworker's
child and its records, so "other" must get 404 (out of scope looks like absent) and never 200.
"""

from datetime import timedelta

import pytest

from models import Actor, User, db, utcnow
from models.agencies import save_agency
from models.attachments import attach_whole, start_upload
from models.grants import request_grant
from models.matching import MatchCandidate
from models.records import create_record
from models.referrals import propose_referral
from models.syncstate import Conflict
from models.tracing import create_request, link
from models.transfers import propose_transfer
from sync.devices import disable_user, enroll_device
from tests import attachment_samples
from tests.factories import make_child, make_user, token_for, walk
from tests.web_client import TOKEN, sign_in

LOGIN = "login"
IDENTITIES = ("anon", "admin", "manager", "own", "other", "analyst", "device", "disabled")

# (method, rule): statuses for anon, admin, manager, own, other, analyst, device, disabled.
MATRIX = {
    #  anon, admin, manager, own, other, analyst, device, disabled
    ("GET", "/"): (LOGIN, 302, 200, 200, 200, 302, LOGIN, LOGIN),
    ("GET", "/account"): (LOGIN, 200, 200, 200, 200, 200, LOGIN, LOGIN),
    ("POST", "/account"): (LOGIN, 422, 422, 422, 422, 422, LOGIN, LOGIN),
    ("POST", "/account/language"): (LOGIN, 422, 422, 422, 422, 422, LOGIN, LOGIN),
    ("GET", "/alerts"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("GET", "/agencies"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/agencies"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/agencies/<agency_id>"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/alerts/<alert_id>/<action>"): (LOGIN, 403, 302, 302, 404, 403, LOGIN, LOGIN),
    ("POST", "/alerts/acknowledge"): (LOGIN, 403, 302, 302, 302, 403, LOGIN, LOGIN),
    ("GET", "/api/openapi.json"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/v1/alerts"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("GET", "/api/v1/agencies"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("POST", "/api/v1/agencies"): (401, 403, 422, 403, 403, 403, 401, 401),
    ("PATCH", "/api/v1/agencies/<uuid:agency_id>"): (401, 403, 200, 403, 403, 403, 401, 401),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/acknowledge"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/alerts/<uuid:alert_id>/resolve"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("DELETE", "/api/v1/assessments/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/assessments/<uuid:record_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/assessments/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("POST", "/api/v1/auth/token"): (422, 422, 422, 422, 422, 422, 422, 422),
    ("GET", "/api/v1/children"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("POST", "/api/v1/children"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("DELETE", "/api/v1/children/<uuid:child_id>"): (401, 403, 428, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/children/<uuid:child_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/assessments"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/assessments"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/consents"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/consents"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/followups"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/followups"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/services"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/referrals"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/referrals"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/services"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/children/<uuid:child_id>/transitions"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/transitions"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/conflicts"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("GET", "/api/v1/conflicts/<uuid:conflict_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/conflicts/<uuid:conflict_id>/resolve"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("DELETE", "/api/v1/consents/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/consents/<uuid:record_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/consents/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/devices"): (401, 200, 200, 403, 403, 403, 401, 401),
    ("POST", "/api/v1/devices"): (401, 403, 422, 403, 403, 403, 401, 401),
    ("POST", "/api/v1/devices/<uuid:device_id>/revoke"): (401, 200, 200, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/followups"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("DELETE", "/api/v1/followups/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/followups/<uuid:record_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/followups/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("DELETE", "/api/v1/services/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/referrals"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("GET", "/api/v1/referrals/<uuid:referral_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/referrals/<uuid:referral_id>/steps"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/services/<uuid:record_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/services/<uuid:record_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/sync/pull"): (401, 401, 401, 401, 401, 401, 200, 401),
    ("POST", "/api/v1/sync/push"): (401, 401, 401, 401, 401, 401, 422, 401),
    ("GET", "/approvals"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/approvals/<child_id>"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/assets/<path:filename>"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/audit"): (LOGIN, 200, 200, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/children"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("GET", "/children/<child_id>"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/edit"): (LOGIN, 403, 409, 409, 404, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/move"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/reassign"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/referrals"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/restricted"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/records/<entity>"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("GET", "/children/<child_id>/summary"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/summary"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/children/new"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("POST", "/children/new"): (LOGIN, 403, 422, 422, 422, 403, LOGIN, LOGIN),
    ("GET", "/conflicts"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("GET", "/conflicts/<conflict_id>"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("POST", "/conflicts/<conflict_id>"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("GET", "/devices"): (LOGIN, 200, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/devices"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/devices/<device_id>/enrolled"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/devices/<device_id>/revoke"): (LOGIN, 302, 302, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/field/"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/field/<path:asset>"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/field/sw.js"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/field/vocab.json"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/devices/odk/new"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/devices/odk"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/devices/odk/<device_id>/enrolled"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    # OpenRosa (ODK Collect) takes only an OpenRosa device's Basic credentials: tests/test_openrosa_*.py.
    ("GET", "/odk/formList"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("GET", "/odk/forms/<form_id>.xml"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("GET", "/odk/forms/<form_id>/manifest"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("GET", "/odk/forms/<form_id>/media/<filename>"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("POST", "/odk/submission"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("GET", "/followups"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("POST", "/followups/<followup_id>/outcome"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("GET", "/followups/<followup_id>/visit"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("GET", "/grants"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/grants/<grant_id>/<decision>"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/healthz"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/readyz"): (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/metrics"): (404, 404, 404, 404, 404, 404, 404, 404),  # off unless HOMECOMING_METRICS_TOKEN
    ("GET", "/login"): (200, 302, 302, 302, 302, 302, 200, 200),
    ("POST", "/login"): (401, 401, 401, 401, 401, 401, 401, 401),
    ("POST", "/logout"): (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    ("GET", "/reports"): (LOGIN, 403, 200, 403, 403, 200, LOGIN, LOGIN),
    ("GET", "/referrals"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/referrals/<referral_id>/steps"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("POST", "/reports/cases.csv"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/reports/indicators.csv"): (LOGIN, 403, 200, 403, 403, 200, LOGIN, LOGIN),
    ("GET", "/static/<path:filename>"): (404, 404, 404, 404, 404, 404, 404, 404),
    ("GET", "/users"): (LOGIN, 200, 403, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/users"): (LOGIN, 422, 403, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/users/<user_id>/<action>"): (LOGIN, 302, 403, 403, 403, 403, LOGIN, LOGIN),
    # Family tracing and matching (issue 14): matches and links are for managers only.
    ("GET", "/api/v1/matches"): (401, 403, 200, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/matches/<uuid:match_id>"): (401, 403, 200, 403, 403, 403, 401, 401),
    ("POST", "/api/v1/matches/<uuid:match_id>/<any(confirm, dismiss):choice>"): (401, 403, 200, 403, 403, 403, 401, 401),
    # Merging (the matrix's match is a request ↔ child pair: refused, nothing changes).
    ("POST", "/api/v1/matches/<uuid:match_id>/merge"): (401, 403, 422, 403, 403, 403, 401, 401),
    ("POST", "/api/v1/tracing-links/<uuid:link_id>/verify"): (401, 403, 422, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/tracing-requests"): (401, 403, 200, 200, 200, 403, 401, 401),
    ("POST", "/api/v1/tracing-requests"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/api/v1/tracing-requests/<uuid:request_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("PATCH", "/api/v1/tracing-requests/<uuid:request_id>"): (401, 403, 428, 428, 404, 403, 401, 401),
    ("GET", "/api/v1/tracing-requests/<uuid:request_id>/traces"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/tracing-requests/<uuid:request_id>/traces"): (401, 403, 422, 422, 422, 403, 401, 401),
    ("GET", "/matches"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/matches/<match_id>"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/matches/<match_id>/<any(confirm, dismiss):choice>"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/matches/<match_id>/merge"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("GET", "/tracing"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("GET", "/tracing/new"): (LOGIN, 403, 200, 200, 200, 403, LOGIN, LOGIN),
    ("POST", "/tracing/new"): (LOGIN, 403, 422, 422, 422, 403, LOGIN, LOGIN),
    ("GET", "/tracing/<request_id>"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("POST", "/tracing/<request_id>/edit"): (LOGIN, 403, 409, 409, 404, 403, LOGIN, LOGIN),
    ("POST", "/tracing/<request_id>/traces"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("POST", "/tracing/links/<link_id>/verify"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    # Attachments (issue 13): managers and the child's caseworker; the caseworker's device for its own
    # uploads and the files marked for the field. An upload belongs to whoever started it (own).
    ("GET", "/api/v1/children/<uuid:child_id>/attachments"): (401, 403, 200, 200, 404, 403, 200, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/attachments/uploads"): (401, 403, 422, 422, 404, 403, 422, 401),
    ("GET", "/api/v1/attachments/uploads/<uuid:upload_id>"): (401, 403, 404, 200, 404, 403, 200, 401),
    ("PATCH", "/api/v1/attachments/uploads/<uuid:upload_id>"): (401, 403, 404, 415, 404, 403, 415, 401),
    ("PUT", "/api/v1/attachments/uploads/<uuid:upload_id>"): (401, 403, 404, 415, 404, 403, 415, 401),
    ("POST", "/api/v1/attachments/uploads/<uuid:upload_id>/finish"): (401, 403, 404, 409, 404, 403, 409, 401),
    ("DELETE", "/api/v1/attachments/uploads/<uuid:upload_id>"): (401, 403, 404, 204, 404, 403, 404, 401),
    ("GET", "/api/v1/attachments/<uuid:attachment_id>"): (401, 403, 200, 200, 404, 403, 404, 401),
    ("GET", "/api/v1/attachments/<uuid:attachment_id>/content"): (401, 403, 200, 200, 404, 403, 404, 401),
    ("DELETE", "/api/v1/attachments/<uuid:attachment_id>"): (401, 403, 428, 403, 404, 403, 403, 401),
    ("POST", "/children/<child_id>/attachments"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
    ("GET", "/attachments/<attachment_id>"): (LOGIN, 403, 200, 200, 404, 403, LOGIN, LOGIN),
    ("POST", "/attachments/<attachment_id>/delete"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    # Agencies and transfers (issue 13): managers propose and decide; the world's manager is of no
    # agency, so not of the receiving one (accept: 403); the child's caseworker may read transfers.
    ("GET", "/api/v1/children/<uuid:child_id>/transfers"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/children/<uuid:child_id>/transfers"): (401, 403, 422, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/transfers"): (401, 403, 200, 403, 403, 403, 401, 401),
    ("GET", "/api/v1/transfers/<uuid:transfer_id>"): (401, 403, 200, 200, 404, 403, 401, 401),
    ("POST", "/api/v1/transfers/<uuid:transfer_id>/<any(accept, decline, withdraw):step>"):
        (401, 403, 403, 403, 403, 403, 401, 401),
    ("GET", "/transfers"): (LOGIN, 403, 200, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/children/<child_id>/transfers"): (LOGIN, 403, 422, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/transfers/<transfer_id>/decision"): (LOGIN, 403, 302, 403, 403, 403, LOGIN, LOGIN),
    ("POST", "/staff/<user_id>/agency"): (LOGIN, 302, 302, 403, 403, 403, LOGIN, LOGIN),
    # The printable form is for outside providers: the world's referral goes to an agency (422).
    ("GET", "/referrals/<referral_id>/form"): (LOGIN, 403, 422, 422, 404, 403, LOGIN, LOGIN),
}

# The values each path parameter takes (the own caseworker's child and its records, spare objects).
PARAMS = {
    "child_id": "mine", "record_id": None, "alert_id": "alert", "conflict_id": "conflict",
    "device_id": "spare_device", "user_id": "spare_user", "grant_id": "grant", "followup_id": "visit",
    "agency_id": "agency", "referral_id": "referral",
    "filename": "style.css", "form_id": "homecoming_visit", "asset": "index.html", "action": "enable", "decision": "refuse",
    "request_id": "tracing_request", "match_id": "match", "link_id": "link", "choice": "dismiss",
    "entity": "followup", "attachment_id": "attachment", "upload_id": "upload", "transfer_id": "transfer",
    "step": "accept",
}
# Routes whose permitted call destroys what the path names get a throwaway of their own.
THROWAWAY = {("DELETE", "/api/v1/attachments/uploads/<uuid:upload_id>"): {"upload_id": "spare_upload"}}
ACTION_OF = {"/alerts/<alert_id>/<action>": "acknowledge"}
# Form fields that keep a permitted web action from changing what later requests see.
FORM = {"/children/<child_id>/reassign": {"caseworker": "m.own"}}
RECORD_OF = {"assessments": "assessment", "consents": "consent", "followups": "visit", "services": "service"}


def routes(app) -> list[tuple[str, str]]:
    return sorted((method, rule.rule) for rule in app.url_map.iter_rules()
                  for method in rule.methods - {"HEAD", "OPTIONS"})


def build_world() -> dict:
    people = {key: make_user(role, username=f"m.{key}") for key, role in (
        ("admin", "admin"), ("manager", "manager"), ("own", "caseworker"), ("other", "caseworker"),
        ("analyst", "analyst"), ("disabled", "caseworker"), ("spare_user", "analyst"))}
    boss = Actor(user=people["manager"], source="api")
    mine = make_child(people["own"], birth_year=utcnow().year - 15)
    walk(mine, ["registered", "assessed", "reunified", "follow_up"], boss)
    ids = {"mine": mine.id}
    ids["visit"] = create_record("followup", {"child_id": mine.id, "kind": "visit", "status": "scheduled",
                                              "due_on": utcnow().date() - timedelta(days=3)}, boss).id
    ids["assessment"] = create_record("assessment", {"child_id": mine.id, "kind": "health",
                                                     "assessed_on": utcnow().date()}, boss).id
    ids["consent"] = create_record("consent", {"child_id": mine.id, "purpose": "services", "given_by": "child",
                                               "given_on": utcnow().date()}, boss).id
    ids["service"] = create_record("service", {"child_id": mine.id, "type": "education", "status": "planned"},
                                   boss).id
    ids["alert"] = create_record("alert", {"key": f"{mine.id}:matrix", "rule": "visit_overdue",
                                           "severity": "urgent", "child_id": mine.id,
                                           "recipient_id": people["own"].id, "due_on": utcnow().date()}, boss).id
    ids["agency"] = save_agency({"name": "Matrix Vocational Centre", "kind": "vocational_centre"}).id
    ids["referral"] = propose_referral(mine, {"service_type": "education", "agency_id": ids["agency"],
                                              "override_reason": "matrix"}, people["manager"],
                                       today=utcnow().date()).id
    device, device_token = enroll_device(people["own"], "Matrix phone", by=people["manager"])
    spare, _ = enroll_device(people["own"], "Spare phone", by=people["manager"])
    conflict = Conflict(child_id=mine.id, entity="child", record_id=mine.id, device_id=device.id,
                        user_id=people["own"].id, base_version=1, server_version=mine.version,
                        fields=["risk_level"], base_values={"risk_level": None},
                        server_values={"risk_level": "high"}, device_values={"risk_level": "low"})
    db.session.add(conflict)
    db.session.flush()
    tracing_request = create_request({"inquirer_name": "Fictional", "inquirer_relationship": "mother",
                                      "given_name": "Fictional", "sex": "female", "caseworker": "m.own"})
    ids["tracing_request"] = tracing_request.id
    ids["link"] = link(tracing_request.id, mine.id, people["manager"], override_reason="matrix").id
    ids["transfer"] = propose_transfer(mine, {"to_agency_id": ids["agency"], "reason": "matrix",
                                              "override_reason": "matrix"}, people["manager"],
                                       today=utcnow().date()).id
    match = MatchCandidate(kind="request_child", pair_key=f"r:{tracing_request.id}:{mine.id}", score=0.9,
                           signals={}, request_id=tracing_request.id, child_id=mine.id)
    db.session.add(match)
    db.session.flush()
    ids["match"] = match.id
    limits = {"max_bytes": 10_000, "max_count": 10, "upload_hours": 1}
    ids["attachment"] = attach_whole(mine, {"content_type": "image/png"}, attachment_samples.png(),
                                     user=people["manager"], limits=limits).id
    for key in ("upload", "spare_upload"):
        ids[key] = start_upload(mine, {"content_type": "image/png", "size": 100, "sha256": "0" * 64},
                                user=people["own"], limits=limits).id
    ids["grant"] = request_grant(people["spare_user"], "role", by=people["admin"], via="test").id
    ids.update(conflict=conflict.id, spare_device=spare.id, spare_user=people["spare_user"].id,
               device_token=device_token)
    db.session.commit()
    return {"ids": ids, "people": {key: user.username for key, user in people.items()},
            "disabled_id": people["disabled"].id}


def url_for_rule(rule: str, ids: dict, method: str = "GET") -> str:
    path, throwaway = rule, THROWAWAY.get((method, rule), {})
    for part in rule.split("<")[1:]:
        spec = part.split(">", 1)[0]
        name = spec.split(":")[-1]
        if name == "record_id":
            value = ids[RECORD_OF[rule.split("/")[3]]]
        else:
            key = ACTION_OF.get(rule, PARAMS[name]) if name == "action" else throwaway.get(name, PARAMS[name])
            value = ids.get(key, key)
        path = path.replace(f"<{spec}>", str(value))
    return path


def client_for(app, identity, world):
    """A test client and the API headers of ``identity``; every client holds a CSRF token."""
    client = app.test_client()
    headers = {}
    if identity in ("admin", "manager", "own", "other", "analyst", "disabled"):
        username = world["people"][identity]
        assert sign_in(client, username).status_code == 302
        headers = token_for(client, User(username=username))
    else:
        client.get("/login")
    if identity == "device":
        headers = {"Authorization": f"Bearer {world['ids']['device_token']}"}
    return client, headers


def probe(app, world) -> dict:
    """The status every identity gets on every route (``LOGIN`` for a redirect to the sign-in page)."""
    clients = {identity: client_for(app, identity, world) for identity in IDENTITIES}
    with app.app_context():
        disable_user(db.session.get(User, world["disabled_id"]), by=None, via="test")
        db.session.commit()
    seen = {}
    # Signing out ends the session: it goes last.
    for method, rule in sorted(routes(app), key=lambda r: r[1] == "/logout"):
        url = url_for_rule(rule, world["ids"], method)
        row = []
        for identity in IDENTITIES:
            client, headers = clients[identity]
            if rule.startswith("/api"):
                kwargs = {"headers": headers}
                if method in ("POST", "PATCH"):
                    kwargs["json"] = {}
            else:
                with client.session_transaction() as session:
                    token = session.get("csrf")
                if not token:
                    token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
                kwargs = {"headers": headers if identity == "device" else {}}
                if method == "POST":
                    kwargs["data"] = {**FORM.get(rule, {}), "csrf_token": token}
            response = client.open(url, method=method, **kwargs)
            response.get_data()  # a streamed body holds its request context until read and closed
            response.close()
            status = response.status_code
            if status == 302 and response.headers["Location"].startswith("/login"):
                status = LOGIN
            row.append(status)
        seen[(method, rule)] = tuple(row)
    return seen


@pytest.fixture
def world(app):
    with app.app_context():
        return build_world()


def test_every_route_is_in_the_matrix(app):
    missing = sorted(set(routes(app)) - set(MATRIX))
    assert not missing, f"add these routes to MATRIX in {__file__}: {missing}"
    gone = sorted(set(MATRIX) - set(routes(app)))
    assert not gone, f"these MATRIX rows name no route any more: {gone}"


def test_every_identity_gets_the_expected_status_on_every_route(app, world):
    seen = probe(app, world)
    wrong = {key: {"expected": dict(zip(IDENTITIES, MATRIX.get(key, ()), strict=False)),
                   "got": dict(zip(IDENTITIES, got, strict=True))}
             for key, got in seen.items() if MATRIX.get(key) != got}
    assert not wrong, wrong
    assert not any(status == 500 for row in seen.values() for status in row)
