"""OpenRosa (issue 11): ODK Collect's handshake, form list, caseload file and submissions, which go
through the sync write path. The phone is tests/odk_phone.py: real forms from pyxform, instances filled
from those forms, sent as Collect sends them. Runs on SQLite and on PostgreSQL (TEST_DATABASE_URL)."""

import hashlib
from datetime import date, timedelta

from sqlalchemy import text

from models import Actor, Alert, Child, Consent, Followup, MutationLog, StageTransition, db, utcnow
from models.openrosa import OpenRosaSubmission
from models.records import create_record, update_record
from models.syncstate import Conflict
from sync.devices import revoke_device
from tests.factories import make_child, make_user, walk
from tests.odk_phone import JPEG, PNG, basic, odk_phone
from tests.web_client import sign_in

TODAY = date.today().isoformat()


def count(model, *where):
    return db.session.execute(db.select(db.func.count()).select_from(model).where(*where)).scalar_one()


def registration(phone, instance_id=None, deprecated_id=None, **extra):
    answers = {"child/given_name": "Akello Grace", "child/family_name": "Fictional", "child/sex": "female",
               "child/birth_year": "2011", "child/village": "Fictional village", "consents": "services tracing",
               "consent__services/purpose": "services", "consent__services/given_by": "child",
               "consent__services/given_on": TODAY, "consent__tracing/purpose": "tracing",
               "consent__tracing/given_by": "caregiver", "consent__tracing/given_on": TODAY, **extra}
    return phone.fill("homecoming_registration", answers, instance_id=instance_id, deprecated_id=deprecated_id)


def message(response) -> str:
    return response.get_data(as_text=True)


def test_every_answer_carries_the_openrosa_headers_and_asks_for_basic_credentials(app, client):
    phone = odk_phone(app, client)
    anonymous = client.get("/odk/formList")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = client.get("/odk/formList", headers=basic(phone.username, "not-the-password"))
    assert wrong.status_code == 401
    for response in (anonymous, wrong, phone.get("/odk/formList"), phone.head()):
        assert response.headers["X-OpenRosa-Version"] == "1.0"
        assert response.headers["Date"].endswith("GMT")
    head = phone.head()
    assert head.status_code == 204
    assert int(head.headers["X-OpenRosa-Accept-Content-Length"]) == app.config["MAX_CONTENT_LENGTH"]


def test_the_form_list_names_each_shipped_form_with_the_hash_of_what_it_serves(app, client):
    phone = odk_phone(app, client)
    listing = phone.get("/odk/formList")
    assert listing.status_code == 200 and listing.mimetype == "text/xml"
    body = message(listing)
    for form_id in ("homecoming_registration", "homecoming_visit", "homecoming_assessment",
                    "homecoming_service", "homecoming_stage"):
        assert f"<formID>{form_id}</formID>" in body
        form = phone.get(f"/odk/forms/{form_id}.xml")
        assert f"<hash>md5:{hashlib.md5(form.data).hexdigest()}</hash>" in body
        assert 'lang="French (fr)"' in form.get_data(as_text=True)
    only = message(phone.get("/odk/formList?formID=homecoming_visit"))
    assert "homecoming_visit" in only and "homecoming_registration" not in only
    assert phone.get("/odk/forms/nonesuch.xml").status_code == 404


def test_the_caseload_file_holds_the_case_code_and_first_name_of_own_open_cases_only(app, client):
    phone = odk_phone(app, client)
    with app.app_context():
        mine = make_child(make_user_named("cw.odk"), given_name="Akello Grace", family_name="Fictional")
        theirs = make_child(make_user("caseworker"), given_name="Okello")
        codes = mine.case_code, theirs.case_code
        db.session.commit()
    manifest = message(phone.get("/odk/forms/homecoming_visit/manifest"))
    csv = phone.get("/odk/forms/homecoming_visit/media/caseload.csv")
    assert csv.status_code == 200
    assert f"<hash>md5:{hashlib.md5(csv.data).hexdigest()}</hash>" in manifest
    lines = csv.get_data(as_text=True).splitlines()
    assert lines == ["name,label", f"{codes[0]},{codes[0]} Akello"]  # no family name, no other caseload
    assert phone.get("/odk/forms/homecoming_visit/media/other.csv").status_code == 404
    with app.app_context():
        event = db.session.execute(text("SELECT details FROM audit_event WHERE action = 'odk.caseload'")).scalar_one()
        assert '"children": 1' in str(event).replace("'", '"')


def make_user_named(username):
    from models import User

    return db.session.execute(db.select(User).where(User.username == username)).scalar_one()


def test_a_registration_lands_as_a_child_with_consents_that_a_manager_sees_on_the_web(app, client):
    phone = odk_phone(app, client)
    xml, instance_id = registration(phone)
    response = phone.submit(xml)
    assert response.status_code == 201, message(response)
    assert "OpenRosaResponse" in message(response) and response.headers["X-OpenRosa-Version"] == "1.0"
    with app.app_context():
        child = db.session.execute(db.select(Child)).scalar_one()
        assert (child.given_name, child.birth_year, child.caseworker.username) == ("Akello Grace", 2011, "cw.odk")
        purposes = db.session.execute(db.select(Consent.purpose).where(Consent.child_id == child.id)).scalars()
        assert sorted(purposes) == ["services", "tracing"]
        assert count(MutationLog) == 3  # through the sync write path, logged like any push
        row = db.session.get(OpenRosaSubmission, instance_id)
        assert row.status == "applied" and row.form_id == "homecoming_registration"
        raw = db.session.execute(text("SELECT xml FROM openrosa_submission")).scalar_one()
        assert "Akello" not in raw  # the XML is encrypted at rest
        child_id, code = child.id, child.case_code
        make_user("manager", username="boss")
        db.session.commit()
    web = app.test_client()
    assert sign_in(web, "boss").status_code == 302
    page = web.get(f"/children/{child_id}")
    assert page.status_code == 200 and code in page.get_data(as_text=True)


def test_a_retry_is_accepted_without_a_duplicate_and_other_xml_under_the_same_id_is_409(app, client):
    phone = odk_phone(app, client)
    xml, instance_id = registration(phone)
    assert phone.submit(xml).status_code == 201
    again = phone.submit(xml)
    assert again.status_code == 201, message(again)
    changed, _ = registration(phone, instance_id=instance_id, **{"child/given_name": "Someone else"})
    refused = phone.submit(changed)
    assert refused.status_code == 409 and "same instanceID" in message(refused)
    with app.app_context():
        assert count(Child) == 1 and count(Consent) == 2
        assert db.session.execute(db.select(Child.given_name)).scalar_one() == "Akello Grace"


def test_an_edit_in_collect_changes_the_records_the_first_submission_made(app, client):
    phone = odk_phone(app, client)
    xml, first_id = registration(phone)
    assert phone.submit(xml).status_code == 201
    edit, _ = registration(phone, deprecated_id=first_id, **{"child/village": "Another fictional village"})
    response = phone.submit(edit)
    assert response.status_code == 201, message(response)
    with app.app_context():
        child = db.session.execute(db.select(Child)).scalar_one()
        assert child.village == "Another fictional village" and child.version == 2
        assert count(Consent) == 2  # unchanged consents are not sent again
    unknown = phone.fill("homecoming_registration", {"child/given_name": "X", "child/sex": "male"},
                         deprecated_id="uuid:never-sent")[0]
    assert phone.submit(unknown).status_code == 409


def test_an_edit_of_a_field_changed_on_the_web_meanwhile_is_kept_as_a_conflict(app, client):
    phone = odk_phone(app, client)
    xml, first_id = registration(phone)
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        child = db.session.execute(db.select(Child)).scalar_one()
        update_record(child, {"village": "Changed on the web"}, Actor(user=make_user("manager"), source="web"))
        db.session.commit()
    edit, _ = registration(phone, deprecated_id=first_id, **{"child/village": "Changed on the phone"})
    response = phone.submit(edit)
    assert response.status_code == 201 and "a manager will choose" in message(response)
    with app.app_context():
        assert db.session.execute(db.select(Child.village)).scalar_one() == "Changed on the web"
        conflict = db.session.execute(db.select(Conflict)).scalar_one()
        assert conflict.fields == ["village"] and conflict.device_values == {"village": "Changed on the phone"}


def _caseload_child(app, username="cw.odk", stages=("registered", "assessed", "reunified", "follow_up")):
    with app.app_context():
        boss = Actor(user=make_user("manager"), source="api")
        child = make_child(make_user_named(username))
        walk(child, list(stages), boss)
        visit = create_record("followup", {"child_id": child.id, "kind": "visit", "status": "scheduled",
                                           "due_on": utcnow().date() - timedelta(days=2)}, boss)
        db.session.commit()
        return child.id, child.case_code, visit.id


def test_a_home_visit_completes_the_scheduled_visit_of_a_child_in_the_caseload(app, client):
    phone = odk_phone(app, client)
    child_id, code, visit_id = _caseload_child(app)
    xml, _ = phone.fill("homecoming_visit", {
        "case_code": code, "followup/kind": "visit", "followup/status": "done", "followup/completed_on": TODAY,
        "followup/seen": "yes", "followup/wellbeing": "good", "followup/risk_level": "low",
        "followup/concerns": "school_dropout health"})
    response = phone.submit(xml)
    assert response.status_code == 201, message(response)
    with app.app_context():
        visit = db.session.get(Followup, visit_id)
        assert (visit.status, visit.seen, visit.concerns) == ("done", True, ["school_dropout", "health"])
        # Planning ran after the commit: the next visit, from the low risk level.
        next_visit = db.session.execute(db.select(Followup.due_on).where(
            Followup.child_id == child_id, Followup.kind == "visit", Followup.status == "scheduled")).scalar_one()
        assert next_visit == date.today() + timedelta(days=app.config["RULES"]["VISIT_DAYS_LOW"])


def test_a_visit_finding_the_child_abducted_raises_the_urgent_alert_at_once(app, client):
    phone = odk_phone(app, client)
    child_id, code, visit_id = _caseload_child(app)
    xml, _ = phone.fill("homecoming_visit", {
        "case_code": code, "followup/kind": "visit", "followup/status": "done", "followup/completed_on": TODAY,
        "followup/seen": "no", "followup/not_seen_reason": "abducted", "followup/risk_level": "high"})
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        assert count(Alert, Alert.child_id == child_id, Alert.severity == "urgent") >= 1


def test_a_visit_to_a_child_outside_the_caseload_is_refused_and_writes_nothing(app, client):
    phone = odk_phone(app, client)
    with app.app_context():
        make_user("caseworker", username="cw.other")
        db.session.commit()
    _child_id, code, _visit = _caseload_child(app, username="cw.other")
    xml, instance_id = phone.fill("homecoming_visit", {
        "case_code": code, "followup/kind": "visit", "followup/status": "done", "followup/completed_on": TODAY,
        "followup/seen": "yes", "followup/risk_level": "low"})
    response = phone.submit(xml)
    assert response.status_code == 404 and "caseload" in message(response)
    unknown = phone.fill("homecoming_visit", {"case_code": "ZZZZ-ZZZZ", "followup/completed_on": TODAY,
                                              "followup/seen": "yes", "followup/risk_level": "low"})[0]
    assert phone.submit(unknown).status_code == 404
    with app.app_context():
        assert count(Followup, Followup.status == "done") == 0 and count(MutationLog) == 0
        assert db.session.get(OpenRosaSubmission, instance_id).status == "rejected"  # logged all the same


def test_an_invalid_stage_move_is_refused_with_the_allowed_moves(app, client):
    phone = odk_phone(app, client)
    child_id, code, _visit = _caseload_child(app, stages=("registered",))
    xml, _ = phone.fill("homecoming_stage", {"case_code": code, "stage_transition/to_stage": "closed",
                                             "stage_transition/occurred_on": TODAY})
    response = phone.submit(xml)
    assert response.status_code == 422
    assert "assessed" in message(response)  # the allowed target is named
    good, _ = phone.fill("homecoming_stage", {"case_code": code, "stage_transition/to_stage": "assessed",
                                              "stage_transition/occurred_on": TODAY})
    assert phone.submit(good).status_code == 201
    with app.app_context():
        assert db.session.get(Child, child_id).stage == "assessed"
        assert count(StageTransition, StageTransition.to_stage == "closed") == 0


def test_a_registration_with_one_bad_record_writes_none_and_can_be_sent_again_corrected(app, client):
    phone = odk_phone(app, client)
    future = (date.today() + timedelta(days=30)).isoformat()
    bad, instance_id = registration(phone, **{"consent__tracing/given_on": future})
    response = phone.submit(bad)
    assert response.status_code == 422 and "given_on" in message(response)
    with app.app_context():
        assert count(Child) == 0 and count(Consent) == 0
        assert db.session.get(OpenRosaSubmission, instance_id).status == "rejected"
    fixed, _ = registration(phone, instance_id=instance_id)
    assert phone.submit(fixed).status_code == 201
    with app.app_context():
        assert count(Child) == 1 and count(Consent) == 2


def test_media_split_over_several_posts_is_one_submission(app, client):
    phone = odk_phone(app, client)
    xml, instance_id = registration(phone)
    first = phone.submit(xml, media=[("photo1.jpg", JPEG, "image/jpeg")], incomplete=True)
    assert first.status_code == 201, message(first)
    second = phone.submit(xml, media=[("photo2.png", PNG, "image/png")])
    assert second.status_code == 201, message(second)
    with app.app_context():
        assert count(Child) == 1
        media = db.session.get(OpenRosaSubmission, instance_id).media
        assert [(m["name"], m["type"], m["size"]) for m in media] == [
            ("photo1.jpg", "image/jpeg", len(JPEG)), ("photo2.png", "image/png", len(PNG))]
        assert media[0]["sha256"] == hashlib.sha256(JPEG).hexdigest()


def test_bad_input_gets_a_clear_openrosa_error_and_writes_nothing(app, client):
    phone = odk_phone(app, client)
    xml, _ = registration(phone)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]><data id="homecoming_registration"><child><given_name>&c;'
            b'</given_name></child><meta><instanceID>uuid:bomb</instanceID></meta></data>')
    cases = [
        (phone.submit(bomb), 400, "DTD"),
        (phone.submit(b"<data id='homecoming_registration'><child>"), 400, "well formed"),
        (phone.submit(b"<?xml version='1.0' encoding='latin-1'?><data id='x'>\xe9</data>"), 400, "UTF-8"),
        (phone.submit(xml.replace(b'id="homecoming_registration"', b'id="nonesuch"')), 404, "nonesuch"),
        (phone.submit(xml, media=[("photo.jpg", b"MZ\x90\x00 not a photo", "image/jpeg")]), 415, "photo.jpg"),
        (phone.submit(xml, media=[("photo.jpg", PNG, "image/jpeg")]), 415, "image/png"),
        (client.post("/odk/submission", headers=phone.headers, data={"other": "x"}), 400, "xml_submission_file"),
        (phone.submit(xml.replace(b"<instanceID>", b"<instanceIDx>").replace(b"</instanceID>", b"</instanceIDx>")),
         400, "instanceID"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, message(response)
        assert words in message(response) and "<OpenRosaResponse" in message(response)
        assert response.headers["X-OpenRosa-Version"] == "1.0"
    app.config["MAX_CONTENT_LENGTH"] = 4096
    big = phone.submit(xml, media=[("photo.jpg", JPEG + b"\x00" * 8192, "image/jpeg")])
    assert big.status_code == 413 and "4096" in message(big)
    with app.app_context():
        assert count(Child) == 0 and count(OpenRosaSubmission) == 0


def test_a_revoked_phone_or_a_disabled_caseworker_is_refused(app, client):
    phone = odk_phone(app, client)
    assert phone.get("/odk/formList").status_code == 200
    with app.app_context():
        from models import Device

        revoke_device(db.session.get(Device, phone.device_id), by=None)
        db.session.commit()
    refused = phone.head()
    assert refused.status_code == 403
    xml, _ = registration(odk_phone(app, client))  # another phone to fill the form
    assert phone.submit(xml).status_code == 403
    with app.app_context():
        assert count(Child) == 0
