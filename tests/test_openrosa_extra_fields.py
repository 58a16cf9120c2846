"""A programme's own questions are kept with the child (issue 11, docs/odk.md): written with the
submission's records, all or nothing, encrypted at rest, shown on the child's page, never pulled by a
device, deleted by de-identification. Every name is fictional. SQLite and PostgreSQL."""

from datetime import date, timedelta

from sqlalchemy import text

from models import Child, Consent, User, db
from models.openrosa import ChildExtraField, OpenRosaSubmission
from models.retention import deidentify
from server.openrosa.shipped_forms import q, write_xlsx
from tests.factories import make_child, make_user
from tests.odk_phone import odk_phone
from tests.sync_devices import enrol_device
from tests.web_client import sign_in
from tests.web_client import text as page_text

TODAY = date.today().isoformat()
CHOICES = [("sex", "female", "Female", "Fille"), ("sex", "male", "Male", "Garçon"),
           ("purpose", "services", "Services", "Services"), ("given_by", "child", "Child", "Enfant")]


def group(name, rows):
    return [q("begin group", name, name), *rows, q("end group", "")]


def programme_forms(app, folder):
    """An intake that registers a child with household questions, and a check-in about a child of the
    caseload that asks only the programme's own questions."""
    write_xlsx({"settings": ("kitgum_intake", "Kitgum intake", "1", "English (en)", ""), "choices": CHOICES,
                "survey": [*group("child", [q("text", "given_name", "Given name"), q("select_one sex", "sex", "Sex")]),
                           *group("consent", [q("select_one purpose", "purpose", "Purpose"),
                                              q("select_one given_by", "given_by", "Given by"),
                                              q("date", "given_on", "Given on")]),
                           *group("household", [q("integer", "siblings", "Siblings"),
                                                q("text", "guardian_phone", "Guardian's phone")]),
                           q("text", "school", "School")]},
               folder / "kitgum_intake.xlsx")
    write_xlsx({"settings": ("kitgum_checkin", "Kitgum check-in", "1", "English (en)", ""), "choices": [],
                "survey": [q("select_one_from_file caseload.csv", "case_code", "Child"),
                           *group("assessment", [q("date", "assessed_on", "Date")]),
                           q("text", "school", "School"), q("text", "mentor", "Mentor")]},
               folder / "kitgum_checkin.xlsx")
    app.config["ODK_FORMS_DIR"] = str(folder)


def intake(phone, deprecated_id=None, **answers):
    given = {"child/given_name": "Adong", "child/sex": "female", "consent/purpose": "services",
             "consent/given_by": "child", "consent/given_on": TODAY, "household/siblings": "4",
             "household/guardian_phone": "+256 700 000 001", "school": "Fictional P7", **answers}
    return phone.fill("kitgum_intake", given, deprecated_id=deprecated_id)


def kept(child_id=None) -> dict:
    rows = db.session.execute(db.select(ChildExtraField).where(
        *([ChildExtraField.child_id == child_id] if child_id else []))).scalars()
    return {(row.form_id, row.field_name): row.value for row in rows}


def test_a_programmes_questions_are_kept_with_the_child_encrypted_and_shown_on_its_page(app, client, tmp_path):
    programme_forms(app, tmp_path)
    phone = odk_phone(app, client)
    xml, instance_id = intake(phone)
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        child = db.session.execute(db.select(Child)).scalar_one()
        assert kept(child.id) == {("kitgum_intake", "household/siblings"): "4",
                                  ("kitgum_intake", "household/guardian_phone"): "+256 700 000 001",
                                  ("kitgum_intake", "school"): "Fictional P7"}
        assert db.session.execute(db.select(ChildExtraField.instance_id)).scalars().all() == [instance_id] * 3
        raw = db.session.execute(text("SELECT value FROM child_extra_field")).scalars().all()
        assert raw and not any("Fictional P7" in v or "+256" in v for v in raw)  # encrypted at rest
        child_id = child.id
        make_user("manager", username="boss")
        db.session.commit()
    for who in ("boss", "cw.odk"):  # the manager, and the caseworker whose case it is
        viewer = app.test_client()
        sign_in(viewer, who)
        body = page_text(viewer.get(f"/children/{child_id}"))
        assert "Programme questions" in body and "household/guardian_phone" in body and "Fictional P7" in body


def test_a_later_form_replaces_an_answer_and_an_edit_drops_what_it_emptied(app, client, tmp_path):
    programme_forms(app, tmp_path)
    phone = odk_phone(app, client)
    with app.app_context():
        child = make_child(db.session.execute(db.select(User).where(User.username == "cw.odk")).scalar_one())
        child_id, code = child.id, child.case_code
        db.session.commit()
    first, first_id = phone.fill("kitgum_checkin", {"case_code": code, "school": "Fictional P6",
                                                    "mentor": "Okello (fictional)"})
    assert phone.submit(first).status_code == 201  # no record answered: the extra answers alone
    edit, _ = phone.fill("kitgum_checkin", {"case_code": code, "school": "Fictional P7"}, deprecated_id=first_id)
    assert phone.submit(edit).status_code == 201
    with app.app_context():
        assert kept(child_id) == {("kitgum_checkin", "school"): "Fictional P7"}  # the mentor was emptied


def test_answers_about_a_child_outside_the_caseload_or_with_a_refused_record_keep_nothing(app, client, tmp_path):
    programme_forms(app, tmp_path)
    phone = odk_phone(app, client)
    with app.app_context():
        other = make_child(_user("cw.other"))
        code = other.case_code
        db.session.commit()
    xml, _ = phone.fill("kitgum_checkin", {"case_code": code, "school": "Fictional P6"})
    assert phone.submit(xml).status_code == 404
    future = (date.today() + timedelta(days=30)).isoformat()
    bad, instance_id = intake(phone, **{"consent/given_on": future})
    assert phone.submit(bad).status_code == 422
    with app.app_context():
        assert kept() == {} and db.session.execute(db.select(db.func.count()).select_from(Consent)).scalar() == 0
        assert db.session.get(OpenRosaSubmission, instance_id).status == "rejected"


def test_extra_answers_never_reach_a_device_and_de_identification_deletes_them(app, client, tmp_path):
    programme_forms(app, tmp_path)
    phone = odk_phone(app, client)
    xml, instance_id = intake(phone)
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        cw = db.session.execute(db.select(Child)).scalar_one().caseworker
        token = enrol_device(cw, "Field app phone")
        db.session.commit()
    pulled = client.get("/api/v1/sync/pull?limit=500", headers={"Authorization": f"Bearer {token}"})
    assert pulled.status_code == 200 and "Adong" in pulled.get_data(as_text=True)  # the child is pulled…
    assert "Fictional P7" not in pulled.get_data(as_text=True) and "+256" not in pulled.get_data(as_text=True)
    with app.app_context():
        child_id = db.session.execute(db.select(Child.id)).scalar_one()
        assert db.session.get(OpenRosaSubmission, instance_id).child_id == child_id
        deidentify([child_id])
        db.session.commit()
        assert kept() == {}
        logged = db.session.get(OpenRosaSubmission, instance_id)
        assert logged.xml == "" and logged.status == "applied"  # the form that named the child is erased
    assert phone.submit(xml).status_code == 201  # a late retry is still known as a retry
    edit, _ = intake(phone, school="Fictional P8", deprecated_id=instance_id)
    refused = phone.submit(edit)
    assert refused.status_code == 409 and "no longer kept" in refused.get_data(as_text=True)


def _user(username):
    return make_user("caseworker", username=username)


def test_a_shipped_forms_helper_questions_are_not_kept(app, client):
    phone = odk_phone(app, client)
    xml, _ = phone.fill("homecoming_registration", {
        "child/given_name": "Akello", "child/sex": "female", "consents": "services",
        "consent__services/purpose": "services", "consent__services/given_by": "child",
        "consent__services/given_on": TODAY})
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        assert db.session.execute(db.select(Child)).scalar_one() and kept() == {}
