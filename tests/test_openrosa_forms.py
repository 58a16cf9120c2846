"""The shipped XLSForms and a programme's own (issue 11): the committed spreadsheets are exactly the
rows of server/openrosa/shipped_forms.py, pyxform converts each, and a form that maps onto fields the
model lacks, or collects restricted fields unencrypted, is refused before any phone sees it."""

import logging

from openpyxl import load_workbook

from models import Child, db
from models.openrosa import OpenRosaSubmission
from server.openrosa.catalogue import forms
from server.openrosa.shipped_forms import FORMS_DIR, SHIPPED, q, sheets, write_xlsx
from tests.odk_phone import odk_phone


def cells(path) -> dict:
    book = load_workbook(path)
    return {sheet.title: [tuple("" if c is None else c for c in row) for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets}


def test_the_committed_spreadsheets_are_the_rows_of_shipped_forms():
    for form in SHIPPED.values():
        path = FORMS_DIR / f"{form['settings'][0]}.xlsx"
        assert cells(path) == {title: [tuple(r) for r in rows] for title, rows in sheets(form).items()}, (
            f"{path.name} differs from shipped_forms.py: run python -m server.openrosa.shipped_forms")


def test_every_shipped_form_converts_in_english_and_french(ctx):
    served = forms()  # no ODK private key in the test configuration: no encrypted form
    assert set(served) == {form["settings"][0] for form in SHIPPED.values()} - {"homecoming_restricted_profile"}
    for form in served.values():
        assert b'lang="English (en)"' in form.xform and b'lang="French (fr)"' in form.xform
    assert served["homecoming_visit"].media == ("caseload.csv",) and served["homecoming_registration"].media == ()
    registration = served["homecoming_registration"]
    assert [g.entity for g in registration.groups] == ["child", "consent", "consent", "consent", "consent"]


def programme_form(form_id: str, rows: list) -> dict:
    return {"settings": (form_id, f"Programme: {form_id}", "1", "English (en)", ""),
            "survey": rows, "choices": []}


def group(name, rows):
    return [q("begin group", name, name), *rows, q("end group", "")]


def test_a_programmes_own_form_is_served_and_its_own_questions_kept_in_the_log(app, client, tmp_path):
    write_xlsx(programme_form("kitgum_intake", [
        *group("child", [q("text", "given_name", "Given name"), q("select_one sex", "sex", "Sex")]),
        *group("household", [q("integer", "siblings", "Siblings")]),
    ]) | {"choices": [("sex", "female", "Female", "Fille"), ("sex", "male", "Male", "Garçon")]},
        tmp_path / "kitgum_intake.xlsx")
    app.config["ODK_FORMS_DIR"] = str(tmp_path)
    phone = odk_phone(app, client)
    assert "<formID>kitgum_intake</formID>" in phone.get("/odk/formList").get_data(as_text=True)
    xml, instance_id = phone.fill("kitgum_intake", {"child/given_name": "Adong", "child/sex": "female",
                                                    "household/siblings": "4"})
    assert phone.submit(xml).status_code == 201
    with app.app_context():
        assert db.session.execute(db.select(Child.given_name)).scalar_one() == "Adong"
        assert "<siblings>4</siblings>" in db.session.get(OpenRosaSubmission, instance_id).xml


def test_a_form_naming_fields_the_model_lacks_or_restricted_ones_unencrypted_is_not_served(app, tmp_path, caplog):
    write_xlsx(programme_form("typo_form", group("child", [q("text", "given_nmae", "Given name")])),
               tmp_path / "typo_form.xlsx")
    write_xlsx(programme_form("open_profile", [q("text", "case_code", "Case code"),
                                               *group("child", [q("text", "armed_group", "Armed group")])]),
               tmp_path / "open_profile.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"not a spreadsheet")
    app.config["ODK_FORMS_DIR"] = str(tmp_path)
    with app.app_context(), caplog.at_level(logging.ERROR):
        served = forms()
    assert not {"typo_form", "open_profile"} & set(served) and "homecoming_visit" in served
    assert "no field 'given_nmae'" in caplog.text
    assert "restricted fields (armed_group) but is not encrypted" in caplog.text
    assert "broken.xlsx" in caplog.text
