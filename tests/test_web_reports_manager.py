"""Reports for running the programme (issue 12): a managers' internal view without suppression, the
monthly trend of the last 12 months, no empty charts, CSV Excel can read, no period after today."""

import re
from datetime import date, timedelta

import pytest

from models import Actor, Child, db, utcnow
from models.records import create_record, transition
from models.reporting import _month_start, build_trend
from tests.factories import make_child, make_user
from tests.test_reports_pages import csrf_of, rows_of, sign_in


def cell(html, table, key, column):
    """The text of one cell: the row ``key`` of ``table``, the ``column``-th number (0 = first)."""
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    row = section.split(f'data-key="{key}"', 1)[1].split("</tr>", 1)[0]
    return re.findall(r'<td class="num">([^<]*)</td>', row)[column]


@pytest.fixture
def programme(ctx):
    """Three girls of 15–17 identified this month, one of them registered; two boys two months ago."""
    today = utcnow().date()
    manager, analyst, cw = make_user("manager"), make_user("analyst"), make_user("caseworker")
    actor = Actor(user=manager, source="web")
    for i in range(3):
        child = make_child(cw, actor, sex="female", birth_year=today.year - 16, identified_on=today.replace(day=1),
                           given_name=f"Adong{i}", family_name="Fictional")
        if i == 0:
            transition(child, "registered", actor, occurred_on=today.replace(day=1), today=today)
    earlier = _month_start(today, 2)
    for i in range(2):
        make_child(cw, actor, sex="male", birth_year=today.year - 12, identified_on=earlier,
                   given_name=f"Okot{i}", family_name="Fictionál")
    # All in the identified export (issue 13: it lists only children with a reporting consent).
    for child_id in db.session.execute(db.select(Child.id)).scalars().all():
        create_record("consent", {"child_id": child_id, "purpose": "reporting", "given_by": "caregiver",
                                  "given_on": earlier}, actor)
    db.session.commit()
    return {"manager": manager, "analyst": analyst, "today": today, "earlier": earlier}


def test_managers_see_exact_counts_in_the_internal_view(client, programme):
    sign_in(client, programme["manager"])
    period = {"start": programme["earlier"].isoformat(), "end": programme["today"].isoformat()}
    donor = client.get("/reports", query_string=period).get_data(as_text=True)
    assert cell(donor, "indicators", "identified", 0) == "5"  # total
    assert cell(donor, "indicators", "identified", 1) == "&lt;5"  # girls, suppressed for donors
    assert "Internal view with exact counts" in donor
    internal = client.get("/reports", query_string={**period, "view": "internal"}).get_data(as_text=True)
    assert "nothing suppressed" in internal
    assert (cell(internal, "indicators", "identified", 1), cell(internal, "indicators", "identified", 2)) == ("3", "2")
    # No download from the internal view: exact counts must not end up in a donor's file by mistake.
    assert "indicators.csv" not in internal


def test_analysts_never_get_the_internal_view(client, programme):
    sign_in(client, programme["analyst"])
    start = _month_start(programme["today"], 3).isoformat()
    end = (programme["today"].replace(day=1) - timedelta(days=1)).isoformat()
    page = client.get("/reports", query_string={"start": start, "end": end, "view": "internal"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "nothing suppressed" not in html
    assert cell(html, "indicators", "identified", 0) == "&lt;5"


def test_the_monthly_trend_counts_each_month_of_the_last_twelve(client, programme):
    sign_in(client, programme["manager"])
    html = client.get("/reports", query_string={"view": "internal"}).get_data(as_text=True)
    months = re.findall(r'<th scope="col" class="num">([^<]+)</th>', html.split('id="trend"', 1)[1].split("</thead>")[0])
    assert len(months) == 12 and months[-1] == programme["today"].strftime("%b %Y")
    assert cell(html, "trend", "identified", 11) == "3" and cell(html, "trend", "identified", 9) == "2"
    assert cell(html, "trend", "identified", 10) == "0"
    assert cell(html, "trend", "registered", 11) == "1"
    trend = build_trend(programme["today"])  # suppressed: the months partition the year's total
    identified = next(row for row in trend.rows if row.key == "identified")
    assert list(identified.cells.values()).count("<5") == 2
    assert 'aria-label="Children per month, last 12 months"' in html


def test_a_period_without_data_says_so_instead_of_empty_charts(client, ctx):
    manager = make_user("manager")
    db.session.commit()
    sign_in(client, manager)
    html = client.get("/reports", query_string={"start": "2020-01-01", "end": "2020-12-31"}).get_data(as_text=True)
    assert html.count("No data for this period.") >= 5  # sex, age, trend, district, closures
    assert "<svg" not in html


def test_no_period_ends_after_today(client, programme):
    sign_in(client, programme["manager"])
    tomorrow = (programme["today"] + timedelta(days=1)).isoformat()
    response = client.get("/reports", query_string={"start": "2026-01-01", "end": tomorrow})
    assert response.status_code == 400 and "cannot be after today" in response.get_data(as_text=True)
    assert client.get("/reports/indicators.csv", query_string={"end": tomorrow}).status_code == 400


def test_analysts_whole_months_stop_before_the_month_in_progress(client, programme):
    sign_in(client, programme["analyst"])
    today = programme["today"]
    html = client.get("/reports", query_string={"start": _month_start(today, 2).isoformat(),
                                                "end": today.isoformat()}).get_data(as_text=True)
    last = today.replace(day=1) - timedelta(days=1)
    assert f'value="{last.isoformat()}"' in html
    this_month = client.get("/reports", query_string={"start": today.replace(day=1).isoformat(),
                                                      "end": today.isoformat()})
    assert this_month.status_code == 400 and "this month is not over yet" in this_month.get_data(as_text=True)


def test_csv_files_start_with_a_bom_so_excel_reads_dashes_and_accents(client, programme):
    sign_in(client, programme["manager"])
    period = {"start": programme["earlier"].isoformat(), "end": programme["today"].isoformat()}
    figures = client.get("/reports/indicators.csv", query_string=period)
    assert figures.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert any("15–17" in row for row in rows_of(figures))
    cases = client.post("/reports/cases.csv", data={**period, "csrf_token": csrf_of(client)})
    rows = rows_of(cases)
    assert any("Fictionál" in row for row in rows) and any("15–17" in row for row in rows)


def test_month_start_counts_back_across_years():
    assert _month_start(date(2026, 2, 14), 3) == date(2025, 11, 1)
    assert _month_start(date(2026, 12, 3), 11) == date(2026, 1, 1)
