"""The donor indicators: definitions, disaggregation, and small-cell suppression."""

from datetime import date

import pytest

from models import Actor, db
from models.disclosure import HIDDEN, SMALL, rate, suppress, suppress_partition, suppress_subset
from models.indicators import (
    Period,
    closures_by_reason,
    count_children,
    followups_on_time,
)
from models.records import create_record, delete_record, transition, update_record
from models.reporting import build_report
from tests.factories import make_child, make_user, walk

YEAR = Period(date(2025, 1, 1), date(2025, 12, 31))


@pytest.fixture
def people(ctx):
    manager = make_user("manager")
    cw = make_user("caseworker")
    return manager, cw, Actor(user=manager, source="web")


def total(rows, value="n"):
    return sum(r[value] for r in rows)


def test_suppression_rule():
    assert [suppress(n) for n in (0, 1, 4, 5, 12)] == [0, SMALL, SMALL, 5, 12]
    # One hidden cell in a partition would be recoverable from the total: hide the next smallest.
    assert suppress_partition({"f": 3, "m": 20, "o": 7, "u": 0}) == {"f": SMALL, "m": 20, "o": HIDDEN, "u": 0}
    assert suppress_partition({"f": 3, "m": 2, "o": 7}) == {"f": SMALL, "m": SMALL, "o": 7}
    assert suppress_partition({"f": 3, "m": 0}) == {"f": SMALL, "m": 0}
    assert suppress_partition({"f": 9, "m": 6}) == {"f": 9, "m": 6}
    # A part of a shown cell: hidden when the rest of it is 1-4 (12 women and girls, 10 girls: 2 women).
    assert suppress_subset(10, 12, 12) == HIDDEN
    assert suppress_subset(10, 15, 15) == 10 and suppress_subset(12, 12, 12) == 12
    assert suppress_subset(3, 12, 12) == SMALL and suppress_subset(10, 12, HIDDEN) == 10
    assert rate(8, 10) == "80%"
    assert rate(SMALL, 10) == "—" and rate(8, HIDDEN) == "—" and rate(0, 0) == "—"


def test_identified_counts_children_by_identification_date_with_dimensions(people):
    _, cw, actor = people
    make_child(cw, actor, identified_on=date(2025, 3, 1), birth_year=2012, sex="female", child_mother=True)
    make_child(cw, actor, identified_on=date(2025, 3, 1), birth_year=2009, sex="male", district="Gulu")
    make_child(cw, actor, identified_on=date(2025, 3, 1), birth_year=2006, sex="male", district=None)
    make_child(cw, actor, identified_on=date(2025, 3, 1), birth_year=None, sex="other")
    make_child(cw, actor, identified_on=date(2024, 12, 31), birth_year=2010)  # before the period
    gone = make_child(cw, actor, identified_on=date(2025, 4, 1))
    delete_record(gone, actor)
    rows = count_children("identified", YEAR)
    cube = {(r["sex"], r["age_band"], r["district"], r["child_mother"]): r["n"] for r in rows}
    assert cube == {
        ("female", "under_15", "Kitgum", True): 1,  # 2025 - 2012 = 13
        ("male", "15_17", "Gulu", False): 1,  # 16
        ("male", "18_plus", None, False): 1,  # 19
        ("other", "unknown", "Kitgum", False): 1,
    }


def test_stage_indicators_count_transitions_in_the_period_once_per_child(people):
    _, cw, actor = people
    a = make_child(cw, actor)
    walk(a, ["registered", "assessed", "reunified"], actor, start=date(2025, 1, 10))
    b = make_child(cw, actor, identified_on=date(2024, 6, 1))
    walk(b, ["registered", "assessed", "reunified"], actor, start=date(2024, 6, 1))  # all in 2024
    c = make_child(cw, actor, identified_on=date(2024, 6, 1))
    walk(c, ["registered"], actor, start=date(2024, 12, 1), step_days=40)  # registered 2025-01-10
    assert total(count_children("registered", YEAR)) == 2
    assert total(count_children("reunified", YEAR)) == 1
    assert total(count_children("identified", YEAR)) == 1


def test_school_or_training_counts_running_education_and_training_services(people):
    _, cw, actor = people
    kids = [make_child(cw, actor) for _ in range(6)]
    services = [
        {"type": "education", "status": "active", "started_on": date(2024, 2, 1)},  # counts
        {"type": "vocational_training", "status": "completed", "started_on": date(2025, 2, 1),
         "ended_on": date(2025, 6, 1)},  # counts
        {"type": "education", "status": "dropped", "started_on": date(2025, 2, 1)},  # dropout: no
        {"type": "psychosocial", "status": "active", "started_on": date(2025, 2, 1)},  # not school: no
        {"type": "education", "status": "completed", "started_on": date(2023, 1, 1),
         "ended_on": date(2024, 12, 1)},  # ended before: no
        {"type": "education", "status": "active", "started_on": date(2026, 1, 5)},  # after: no
    ]
    for kid, service in zip(kids, services, strict=True):
        create_record("service", {"child_id": kid.id, **service}, actor)
    create_record("service", {"child_id": kids[0].id, "type": "vocational_training", "status": "active"}, actor)
    assert total(count_children("school_or_training", YEAR)) == 2


def visit(child, actor, due, **outcome):
    return create_record("followup", {"child_id": child.id, "kind": "visit", "due_on": due, **outcome}, actor)


def test_rerecruited_or_missing(people):
    _, cw, actor = people
    went_missing = make_child(cw, actor)
    walk(went_missing, ["registered", "missing"], actor, start=date(2025, 1, 10))
    concern = make_child(cw, actor)
    visit(concern, actor, date(2025, 5, 1), status="done", completed_on=date(2025, 5, 2), seen=True,
          concerns=["health", "re_recruitment"])
    with_group = make_child(cw, actor)
    visit(with_group, actor, date(2025, 5, 1), status="done", completed_on=date(2025, 5, 1), seen=False,
          not_seen_reason="with_armed_group")
    other = make_child(cw, actor)
    visit(other, actor, date(2025, 5, 1), status="done", completed_on=date(2025, 5, 1), seen=True,
          concerns=["school_dropout"])
    visit(went_missing, actor, date(2025, 2, 1), status="done", completed_on=date(2025, 2, 1), seen=True,
          concerns=["re_recruitment"])  # counted once
    assert total(count_children("rerecruited_or_missing", YEAR)) == 3


def test_followups_on_time_over_followups_due_in_the_period(people):
    _, cw, actor = people
    kid = make_child(cw, actor, sex="male")
    visit(kid, actor, date(2025, 3, 1), status="done", completed_on=date(2025, 3, 1), seen=True)  # on time
    visit(kid, actor, date(2025, 3, 1), status="done", completed_on=date(2025, 3, 9), seen=True)  # late
    visit(kid, actor, date(2025, 4, 1), status="missed")
    visit(kid, actor, date(2025, 4, 1), status="cancelled")  # not due any more
    visit(kid, actor, date(2026, 2, 1), status="done", completed_on=date(2025, 12, 1), seen=True)  # due after
    visit(kid, actor, date(2025, 12, 20))  # due after "today": not yet late
    rows = followups_on_time(YEAR, today=date(2025, 12, 10))
    assert (total(rows, "due"), total(rows, "on_time")) == (3, 1)
    assert total(followups_on_time(YEAR), "due") == 4


def test_closures_by_reason(people):
    manager, cw, actor = people
    for reason in ("reintegrated", "reintegrated", "transferred"):
        kid = make_child(cw, actor)
        walk(kid, ["registered", "assessed", "reunified", "follow_up", "closure_pending", "closed"], actor,
             start=date(2025, 1, 10))
        if reason != "reintegrated":
            # The walk closes with "reintegrated"; reopen and close again with another reason.
            walk(kid, ["assessed", "reunified", "follow_up", "closure_pending"], actor,
                 start=date(2025, 4, 1), reason="Fictional: reopened for the test.")
            transition(kid, "closed", actor, occurred_on=date(2025, 6, 1), closure_reason=reason,
                       today=date(2026, 11, 27))
    rows = closures_by_reason(YEAR)
    by_reason = {}
    for r in rows:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + r["n"]
    # The reopened child was closed twice in the year, once per reason.
    assert by_reason == {"reintegrated": 3, "transferred": 1}


def test_report_tables_suppress_small_cells(people):
    _, cw, actor = people
    for i in range(12):
        make_child(cw, actor, sex="female" if i < 9 else "male", birth_year=2012 if i < 7 else 2009,
                   child_mother=i < 2, district="Kitgum" if i < 10 else "Gulu", identified_on=date(2025, 3, 1))
    report = build_report(YEAR.start, YEAR.end)
    identified = next(r for r in report.main if r.key == "identified")
    cells = identified.cells
    assert cells["total"] == 12
    # Male 3 is small; female 9 would give it away (12 - 9 - 0 - 0), so it is hidden too.
    assert (cells["sex:female"], cells["sex:male"]) == (HIDDEN, SMALL)
    assert cells["sex:other"] == 0 and cells["sex:unknown"] == 0
    assert (cells["age:under_15"], cells["age:15_17"]) == (7, 5)
    assert cells["girls"] == 9 and cells["child_mothers"] == SMALL
    districts = next(r for r in report.by_district if r.key == "identified")
    assert report.districts == ["Gulu", "Kitgum"]
    # Gulu has 2: hidden, and Kitgum too, else 12 - 10 gives it away.
    assert districts.cells == {"Gulu": SMALL, "Kitgum": HIDDEN}
    registered = next(r for r in report.main if r.key == "registered")
    assert set(registered.cells.values()) == {0}
    rate_row = next(r for r in report.main if r.key == "followups_on_time_rate")
    assert rate_row.cells["total"] == "—"


def test_report_in_school_row_follows_service_edits(people):
    _, cw, actor = people
    kids = [make_child(cw, actor) for _ in range(5)]
    services = [create_record("service", {"child_id": k.id, "type": "education", "status": "active"}, actor)
                for k in kids]
    row = lambda: next(r for r in build_report(YEAR.start, YEAR.end).main if r.key == "school_or_training")  # noqa: E731
    assert row().cells["total"] == 5
    update_record(services[0], {"status": "dropped"}, actor)
    db.session.flush()
    assert row().cells["total"] == SMALL


def test_period_must_not_end_before_it_starts():
    with pytest.raises(ValueError, match="before its start"):
        Period(date(2025, 2, 1), date(2025, 1, 1))
