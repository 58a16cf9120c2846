"""The reports page and its CSV exports, for every role, through the Flask test client."""

import csv
import io
import re
from datetime import date

import pytest

from models import Actor, AuditEvent, AuditEventChild, db
from models.children import Child
from models.exports import IDENTIFIED_COLUMNS, spreadsheet_safe
from models.records import create_record
from models.sensitivity import RESTRICTED, fields_of
from tests.factories import PASSWORD, make_child, make_user, walk

PERIOD = {"start": "2025-01-01", "end": "2025-12-31"}
ARMED_GROUP = "Fictional Group Zeta"


def sign_in(client, user):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return token


def csrf_of(client, path="/reports"):
    html = client.get(path, query_string=PERIOD).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def rows_of(response):
    data = response.get_data()
    assert data.startswith("\ufeff".encode())  # the BOM Excel needs to read UTF-8 (issue 12)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
def data(ctx):
    manager = make_user("manager")
    analyst = make_user("analyst")
    cw = make_user("caseworker")
    actor = Actor(user=manager, source="web")
    for i in range(8):
        child = make_child(cw, actor, sex="female" if i < 6 else "male", birth_year=2011, district="Kitgum",
                           identified_on=date(2025, 2, 1), given_name=f"Visible{i}", armed_group=ARMED_GROUP,
                           child_mother=i == 0)
        if i < 3:
            walk(child, ["registered"], actor, start=date(2025, 2, 1))
    make_child(cw, actor, identified_on=date(2025, 3, 1), district="<script>alert(1)</script>", sex="other",
               given_name="=HYPERLINK(\"http://x.test\",\"y\")", family_name="+Child", other_names="@SUM(A1)")
    # The identified export lists only children with a reporting consent (issue 13): all of these have one.
    for child_id in db.session.execute(db.select(Child.id)).scalars().all():
        create_record("consent", {"child_id": child_id, "purpose": "reporting", "given_by": "caregiver",
                                  "given_on": date(2025, 2, 1)}, actor)
    db.session.commit()
    return {"manager": manager, "analyst": analyst, "caseworker": cw}


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/reports")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["caseworker", "admin"])
def test_caseworkers_and_admins_may_not_see_reports(client, ctx, role):
    user = make_user(role)
    db.session.commit()
    sign_in(client, user)
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/indicators.csv").status_code == 403


def test_manager_sees_indicators_tables_and_charts(client, data):
    sign_in(client, data["manager"])
    response = client.get("/reports", query_string=PERIOD)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="indicators"' in html and 'id="districts"' in html and 'id="closures"' in html
    identified = re.search(r'<tr data-key="identified">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', identified)
    # Total 9: female 6, male 2, other 1, unknown 0. Two small cells hide each other; nothing more hidden.
    assert cells[:5] == ["9", "6", "&lt;5", "&lt;5", "0"]
    assert html.count('role="img"') >= 3
    assert "Download the case list" in html  # managers may export cases
    assert "Visible0" not in html  # never a name on the report


def test_analyst_sees_only_de_identified_reports(client, data):
    sign_in(client, data["analyst"])
    html = client.get("/reports", query_string=PERIOD).get_data(as_text=True)
    assert 'id="indicators"' in html
    assert "Download the case list" not in html
    token = csrf_of(client)
    response = client.post("/reports/cases.csv", data={**PERIOD, "csrf_token": token})
    assert response.status_code == 403
    assert client.get("/children").status_code == 403


ONE_DAY_APART = {"start": "2025-03-17", "end": "2025-03-18"}


def test_analysts_get_whole_months(client, data):
    sign_in(client, data["analyst"])
    html = client.get("/reports", query_string=ONE_DAY_APART).get_data(as_text=True)
    assert 'value="2025-03-01"' in html and 'value="2025-03-31"' in html and "whole calendar months" in html
    rows = rows_of(client.get("/reports/indicators.csv", query_string=ONE_DAY_APART))
    assert {(r[0], r[1]) for r in rows[1:]} == {("2025-03-01", "2025-03-31")}


def test_managers_get_the_days_they_ask_for(client, data):
    sign_in(client, data["manager"])
    rows = rows_of(client.get("/reports/indicators.csv", query_string=ONE_DAY_APART))
    assert {(r[0], r[1]) for r in rows[1:]} == {("2025-03-17", "2025-03-18")}


def test_district_names_are_escaped(client, data):
    sign_in(client, data["manager"])
    html = client.get("/reports", query_string=PERIOD).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_dates_are_explained_not_a_crash(client, data):
    sign_in(client, data["manager"])
    response = client.get("/reports", query_string={"start": "2025-13-01", "end": "2025-01-01"})
    assert response.status_code == 400
    assert "Give a date as YYYY-MM-DD." in response.get_data(as_text=True)
    response = client.get("/reports", query_string={"start": "2025-06-01", "end": "2025-01-01"})
    assert response.status_code == 400
    assert "The end must not be before the start." in response.get_data(as_text=True)
    assert client.get("/reports/indicators.csv", query_string={"start": "soon"}).status_code == 400


def test_de_identified_export_is_the_suppressed_figures_and_is_audited(client, data):
    sign_in(client, data["analyst"])
    response = client.get("/reports/indicators.csv", query_string=PERIOD)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = rows_of(response)
    assert rows[0] == ["Period start", "Period end", "Table", "Indicator", "Breakdown", "Value"]
    registered = {r[4]: r[5] for r in rows if r[2] == "indicators" and r[3] == "Children registered"}
    assert registered["Total"] == "<5" and registered["Male"] == "0"
    body = response.get_data(as_text=True)
    assert "Visible" not in body and ARMED_GROUP not in body and "HYPERLINK" not in body
    # The hostile district name is a cell: written as text, not markup, and not a formula.
    assert any(r[4] == "<script>alert(1)</script>" for r in rows)
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "export.deidentified")).scalars()
    assert [e.actor_id for e in events] == [data["analyst"].id]


def test_identified_export_needs_a_manager_and_csrf_and_is_audited(client, data):
    sign_in(client, data["manager"])
    token = csrf_of(client)
    assert client.post("/reports/cases.csv", data={**PERIOD, "csrf_token": "forged"}).status_code == 400
    assert client.get("/reports/cases.csv", query_string=PERIOD).status_code == 405
    response = client.post("/reports/cases.csv", data={**PERIOD, "csrf_token": token})
    assert response.status_code == 200
    rows = rows_of(response)
    header, lines = rows[0], rows[1:]
    assert len(lines) == 9
    assert "Given name" in header and "Case code" in header
    assert not {name for name, _ in IDENTIFIED_COLUMNS} & set(fields_of(Child, RESTRICTED))
    body = response.get_data(as_text=True)
    assert "Visible0" in body
    assert ARMED_GROUP not in body
    by_name = {line[header.index("Given name")]: line for line in lines}
    assert by_name["Visible0"][header.index("Registered")] == "yes"
    assert by_name["Visible5"][header.index("Registered")] == "no"
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "export.identified")).scalars().all()
    assert len(events) == 1 and events[0].actor_id == data["manager"].id
    assert events[0].details == {"start": "2025-01-01", "end": "2025-12-31", "children": 9,
                                 "left_out_without_consent": 0}
    # The audit names the children the export held, exactly those.
    held = db.session.execute(db.select(AuditEventChild.child_id).where(
        AuditEventChild.event_id == events[0].id)).scalars().all()
    codes = db.session.execute(db.select(Child.case_code).where(Child.id.in_(held))).scalars().all()
    assert sorted(codes) == sorted(line[header.index("Case code")] for line in lines)


def test_identified_export_cells_cannot_run_as_formulas(client, data):
    sign_in(client, data["manager"])
    response = client.post("/reports/cases.csv", data={**PERIOD, "csrf_token": csrf_of(client)})
    rows = rows_of(response)
    header = rows[0]
    hostile = next(r for r in rows[1:] if "HYPERLINK" in r[header.index("Given name")])
    assert hostile[header.index("Given name")] == "'=HYPERLINK(\"http://x.test\",\"y\")"
    assert hostile[header.index("Family name")] == "'+Child"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


@pytest.mark.parametrize("text, safe", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, ""), (12, "12"), ("<5", "<5"),
])
def test_spreadsheet_safe(text, safe):
    assert spreadsheet_safe(text) == safe
