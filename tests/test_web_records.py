"""Records on the manager web (issue 12): registering a child with consent per purpose, adding consents,
assessments, services and follow-ups, recording a visit from the follow-ups list, the approvals'
context, the printable case summary, and the child page's words. Every name here is fictional."""

import re
import uuid
from datetime import timedelta

import pytest

from models import (
    Actor,
    AuditEvent,
    AuditEventChild,
    Child,
    Consent,
    Followup,
    RecordHistory,
    db,
    utcnow,
)
from models.care import Assessment, Service
from models.records import create_record, update_record
from tests.factories import make_child, make_user, walk
from tests.web_client import post, sign_in, text

NUL = "\u0000"


@pytest.fixture
def people(app):
    with app.app_context():
        manager = make_user("manager", username="r.manager")
        cw = make_user("caseworker", username="r.cw")
        make_user("caseworker", username="r.cw2")
        child = make_child(cw, given_name="Akello", family_name="Fictional", village="Lacor", district="Gulu",
                           armed_group="Fictional group", birth_year=utcnow().year - 15)
        visit = create_record("followup", {"child_id": child.id, "kind": "visit", "status": "scheduled",
                                           "due_on": utcnow().date() - timedelta(days=2)},
                              Actor(user=manager, source="api"))
        db.session.commit()
        return {"child": child.id, "code": child.case_code, "visit": visit.id, "manager": manager.id}


def client_of(app, username):
    client = app.test_client()
    assert sign_in(client, username).status_code == 302
    return client


def events(action, child_id=None):
    stmt = db.select(AuditEvent).where(AuditEvent.action == action)
    if child_id is not None:
        stmt = stmt.where(AuditEvent.child_id == child_id)
    return db.session.execute(stmt).scalars().all()


def registered(response) -> Child:
    """The child a registration redirected to."""
    assert response.status_code == 302 and "/children/" in response.headers["Location"]
    return db.session.get(Child, uuid.UUID(response.headers["Location"].rsplit("/", 1)[1]))


REGISTRATION = {"given_name": "Lamunu", "family_name": "Fictional", "sex": "female", "district": "kitgum ",
                "village": "Pajimo", "identified_on": "2026-01-05", "birth_year": "2011",
                "consent-services": "caregiver", "consent-tracing": "child", "consent-reporting": "",
                "armed_group": "Fictional group C"}


def test_a_caseworker_registers_a_child_with_consent_per_purpose(app, people):
    cw = client_of(app, "r.cw")
    form = text(cw.get("/children/new"))
    assert "Consent for services" in form and "Given name" in form and "given_name" in form  # label, name
    response = post(cw, "/children/new", REGISTRATION)
    assert response.status_code == 302
    with app.app_context():
        child = registered(response)
        assert child.given_name == "Lamunu"
        # "kitgum " is the district Kitgum; the caseworker's own caseload; the restricted value kept.
        assert (child.district, child.caseworker.username, child.armed_group) == ("Kitgum", "r.cw",
                                                                                 "Fictional group C")
        consents = db.session.execute(db.select(Consent.purpose, Consent.given_by)
                                      .where(Consent.child_id == child.id)).all()
        assert sorted(consents) == [("services", "caregiver"), ("tracing", "child")]
        sources = db.session.execute(db.select(RecordHistory.source)
                                     .where(RecordHistory.child_id == child.id)).scalars().all()
        assert set(sources) == {"web"}
        assert len(events("child.create", child.id)) == 1 and len(events("consent.create", child.id)) == 2
    page = text(cw.get(response.headers["Location"]))
    assert "consent for services given by the caregiver" in page and "Lamunu Fictional" in page


def test_a_caseworker_cannot_register_into_someone_elses_caseload(app, people):
    cw = client_of(app, "r.cw")
    response = post(cw, "/children/new", {**REGISTRATION, "caseworker": "r.cw2"})
    with app.app_context():
        assert registered(response).caseworker.username == "r.cw"


def test_a_manager_registers_to_a_chosen_caseworker(app, people):
    manager = client_of(app, "r.manager")
    response = post(manager, "/children/new", {**REGISTRATION, "caseworker": "r.cw2"})
    with app.app_context():
        assert registered(response).caseworker.username == "r.cw2"


@pytest.mark.parametrize("change,field,message", [
    ({"given_name": "  "}, "given_name", "Cannot be empty."),
    ({"district": ""}, "district", "Cannot be empty."),
    ({"birth_year": str(utcnow().year + 1)}, "birth_year", "Cannot be in the future."),
    ({"birth_year": "2100"}, "birth_year", "Cannot be in the future."),
    ({"date_of_birth": "2011-03-04", "birth_year": "2010"}, "birth_year", "Does not match the date of birth."),
    ({"sex": ""}, "sex", "Cannot be empty."),
    ({"village": f"Paji{NUL}mo"}, "village", "cannot be stored"),
])
def test_a_refused_registration_keeps_what_was_typed_and_says_why(app, people, change, field, message):
    cw = client_of(app, "r.cw")
    response = post(cw, "/children/new", {**REGISTRATION, **change})
    body = text(response)
    assert response.status_code == 422
    assert message in body and f'id="n-{field}-error"' in body
    assert 'value="Fictional"' in body and "Fictional group C" in body  # the rest of the form kept
    messages = re.findall(r'class="error"[^>]*>([^<]*)<', body)
    assert messages and not any("_" in m or "null" in m for m in messages)  # no field names, no jargon
    if field == "village":
        assert 'value="Pajimo"' in body  # the NUL taken out, the text kept
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Child)).scalar_one() == 1
        assert db.session.execute(db.select(Consent)).first() is None


def test_the_api_and_the_web_share_the_rules(app, people):
    """The rules live in the shared schema: the API refuses the same values with its own error codes."""
    from tests.factories import token_for

    client = app.test_client()
    with app.app_context():
        headers = token_for(client, db.session.get(Child, people["child"]).caseworker)
    for body in ({"sex": "male", "given_name": ""}, {"sex": "male", "district": None},
                 {"sex": "male", "birth_year": 2100}):
        refused = client.post("/api/v1/children", json=body, headers=headers)
        assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "validation_error"
    kitgum = client.post("/api/v1/children", json={"sex": "male", "given_name": "Opio", "district": " KITGUM"},
                         headers=headers)
    assert kitgum.status_code == 201 and kitgum.get_json()["district"] == "Kitgum"


@pytest.mark.parametrize("entity,form,model,check", [
    ("consent", {"purpose": "referral", "given_by": "caregiver", "given_on": "2026-02-01"}, Consent,
     lambda r: (r.purpose, r.given_by) == ("referral", "caregiver")),
    ("assessment", {"kind": "psychosocial", "assessed_on": "2026-02-01", "risk_level": "medium",
                    "notes": "Fictional note."}, Assessment,
     lambda r: (r.kind, r.risk_level, r.notes) == ("psychosocial", "medium", "Fictional note.")),
    ("service", {"type": "education", "provider": "Fictional school", "started_on": "2026-02-01"}, Service,
     lambda r: (r.type, r.status, r.provider) == ("education", "planned", "Fictional school")),
    ("followup", {"kind": "plan_review", "due_on": (utcnow().date() + timedelta(days=30)).isoformat()},
     Followup, lambda r: (r.kind, r.status) == ("plan_review", "scheduled")),
])
def test_records_are_added_to_a_child_on_its_page(app, people, entity, form, model, check):
    cw = client_of(app, "r.cw")
    url = f"/children/{people['child']}/records/{entity}"
    assert post(cw, url, form).status_code == 302
    with app.app_context():
        records = db.session.execute(db.select(model).where(model.child_id == people["child"])).scalars().all()
        added = [r for r in records if r.id != people["visit"]]
        assert len(added) == 1 and check(added[0]) and added[0].version == 1
        history = db.session.execute(db.select(RecordHistory).where(RecordHistory.record_id == added[0].id)
                                     ).scalar_one()
        assert history.source == "web"
        assert len(events(f"{entity}.create", people["child"])) == 1
    # Out of scope looks like absent; a missing required field keeps the form and says so.
    assert post(client_of(app, "r.cw2"), url, form).status_code == 404
    first = next(iter(form))
    refused = post(cw, url, {**form, first: ""})
    assert refused.status_code == 422 and "Cannot be empty." in text(refused)


def test_an_unknown_record_kind_is_404(app, people):
    assert post(client_of(app, "r.cw"), f"/children/{people['child']}/records/alert", {}).status_code == 404


def test_the_child_page_speaks_in_peoples_words(app, people):
    cw = client_of(app, "r.cw")
    page = text(cw.get(f"/children/{people['child']}"))
    assert f'<h1>Akello Fictional <span class="case-code">{people["code"]}</span></h1>' in page
    # The window's title, kept in the browser's history, names no child.
    assert f"<title>Child {people['code']} · Homecoming</title>" in page
    assert "version 1" not in page.lower() and "Year of birth" in page and "birth year" not in page
    # "New stage" preselects nothing; moving without choosing says what to do.
    assert '<option value="">Choose a stage…</option>' in page
    moved = post(cw, f"/children/{people['child']}/move", {"to_stage": "", "occurred_on": "2026-02-01"})
    assert moved.status_code == 422 and "Choose the stage to move to." in text(moved)
    with app.app_context():
        assert db.session.get(Child, people["child"]).stage == "identified"


def test_a_nul_in_the_edit_form_keeps_the_edit(app, people):
    cw = client_of(app, "r.cw")
    with app.app_context():
        version = db.session.get(Child, people["child"]).version
    response = post(cw, f"/children/{people['child']}/edit",
                    {"version": str(version), "sex": "female", "district": "Gulu", "given_name": "Akello",
                     "village": "Lacor", "family_contacts": f"Fictional uncle{NUL}, Lacor"})
    body = text(response)
    assert response.status_code == 422 and "cannot be stored" in body and "Fictional uncle, Lacor" in body
    with app.app_context():
        assert db.session.get(Child, people["child"]).version == version


def test_a_visit_is_recorded_from_the_followups_list(app, people):
    cw = client_of(app, "r.cw")
    listing = cw.get("/followups")
    body = text(listing)
    # Names and villages beside the case code, and the page audited as a read of those children.
    assert "Akello Fictional" in body and "Lacor" in body and people["code"] in body
    assert f"/followups/{people['visit']}/visit" in body
    with app.app_context():
        listed = events("followup.list")
        assert len(listed) == 1
        shown = db.session.execute(db.select(AuditEventChild.child_id)
                                   .where(AuditEventChild.event_id == listed[0].id)).scalars().all()
        assert shown == [people["child"]]
    form = cw.get(f"/followups/{people['visit']}/visit")
    assert form.status_code == 200 and "Was the child seen?" in text(form)
    refused = post(cw, f"/followups/{people['visit']}/outcome",
                   {"back": "followups", "status": "done", "completed_on": utcnow().date().isoformat(),
                    "notes": "Fictional visit note."})
    assert refused.status_code == 422 and "Fictional visit note." in text(refused)
    assert "Back to the follow-ups" in text(refused)
    done = post(cw, f"/followups/{people['visit']}/outcome",
                {"back": "followups", "status": "done", "completed_on": utcnow().date().isoformat(),
                 "seen": "true", "wellbeing": "good"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/followups")
    with app.app_context():
        visit = db.session.get(Followup, people["visit"])
        assert (visit.status, visit.seen, visit.wellbeing) == ("done", True, "good")
    assert client_of(app, "r.cw2").get(f"/followups/{people['visit']}/visit").status_code == 404
    assert cw.get(f"/followups/{uuid.uuid4()}/visit").status_code == 404


def test_approvals_show_names_risk_open_alerts_and_the_last_visit(app, people):
    with app.app_context():
        boss = Actor(user=db.session.get(Child, people["child"]).caseworker, source="api")
        child = db.session.get(Child, people["child"])
        visit = db.session.get(Followup, people["visit"])
        update_record(visit, {"status": "done", "completed_on": utcnow().date() - timedelta(days=1), "seen": True},
                      boss)
        update_record(child, {"risk_level": "high"}, boss)
        walk(child, ["registered", "assessed", "reunified", "follow_up", "closure_pending"], boss)
        # Two alerts, the first raised for two people: two open alerts of the child.
        for n, recipient in ((0, people["manager"]), (0, child.caseworker_id), (1, people["manager"])):
            create_record("alert", {"key": f"{child.id}:t{n}:{recipient}", "rule": ("visit_overdue", "no_contact")[n],
                                    "severity": "warning", "child_id": child.id, "recipient_id": recipient,
                                    "due_on": utcnow().date()}, boss)
        db.session.commit()
    manager = client_of(app, "r.manager")
    page = text(manager.get("/approvals"))
    assert "Akello Fictional" in page and "Lacor" in page and people["code"] in page
    assert "<dt>Risk level</dt><dd>high</dd>" in page
    assert '<dt>Open alerts</dt><dd><span class="tag warn">2</span></dd>' in page
    assert f"<dt>Last visit</dt><dd>{(utcnow().date() - timedelta(days=1)).strftime('%-d %b %Y')}" in page
    with app.app_context():
        assert len(events("closure.list")) == 1


def test_the_case_summary_is_audited_and_leaves_out_the_restricted_profile(app, people):
    cw = client_of(app, "r.cw")
    summary = cw.get(f"/children/{people['child']}/summary")
    body = text(summary)
    assert summary.status_code == 200 and "Akello Fictional" in body and "records.css" in body
    assert "Fictional group" not in body and "Include the restricted" not in body
    assert post(cw, f"/children/{people['child']}/summary").status_code == 403
    assert client_of(app, "r.cw2").get(f"/children/{people['child']}/summary").status_code == 404
    manager = client_of(app, "r.manager")
    assert "Fictional group" not in text(manager.get(f"/children/{people['child']}/summary"))
    with_restricted = post(manager, f"/children/{people['child']}/summary")
    assert with_restricted.status_code == 200 and "Fictional group" in text(with_restricted)
    with app.app_context():
        assert len(events("child.summary", people["child"])) == 2
        restricted = events("child.restricted_read", people["child"])
        assert [e.actor_id for e in restricted] == [people["manager"]]


def test_the_print_stylesheet_hides_the_navigation(client):
    css = client.get("/assets/records.css")
    assert css.status_code == 200 and "@media print" in text(css) and "header.top" in text(css)



def test_registration_and_its_refusals_in_french(app, people):
    cw = client_of(app, "r.cw")
    assert post(cw, "/account/language", {"language": "fr"}).status_code == 302
    form = text(cw.get("/children/new"))
    assert "Enregistrer un enfant" in form and "Prénom" in form and "Consentement, pour chaque finalité" in form
    refused = text(post(cw, "/children/new", {**REGISTRATION, "given_name": "", "birth_year": "2100"}))
    assert "Ne peut pas être vide." in refused and "Ne peut pas être dans le futur." in refused
    page = text(cw.get(f"/children/{people['child']}"))
    assert "Choisissez une étape…" in page and "Résumé du dossier à imprimer" in page
