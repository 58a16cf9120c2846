"""The stage machine of DESIGN §1: every allowed move, every refusal, manager-only moves, derived stage."""

from datetime import date

import pytest

from models import Actor, StageTransition, db
from models.errors import FieldErrors, InvalidTransition, ManagerOnly
from models.lifecycle import MANAGER_ONLY, OPEN_STAGES, STAGES, TRANSITIONS, allowed_targets
from models.records import transition
from tests.factories import make_child, make_user, walk

# A path from `identified` to each stage, so any transition can be tried from its real starting point.
PATH_TO = {
    "identified": [],
    "reception": ["reception"],
    "registered": ["registered"],
    "assessed": ["registered", "assessed"],
    "tracing": ["registered", "assessed", "tracing"],
    "reunified": ["registered", "assessed", "reunified"],
    "follow_up": ["registered", "assessed", "reunified", "follow_up"],
    "closure_pending": ["registered", "assessed", "reunified", "follow_up", "closure_pending"],
    "closed": ["registered", "assessed", "reunified", "follow_up", "closure_pending", "closed"],
    "missing": ["registered", "missing"],
}
ALLOWED = sorted({(a, b) for a in STAGES for b in allowed_targets(a)})
REFUSED = sorted({(a, b) for a in STAGES for b in STAGES if b not in allowed_targets(a)})
TODAY = date(2026, 11, 27)


@pytest.fixture
def manager(ctx):
    return Actor(user=make_user("manager"), source="api")


def child_at(stage, actor):
    child = make_child()
    last = walk(child, PATH_TO[stage], actor)
    return child, last


def extras(from_stage, to_stage):
    kw = {}
    if to_stage == "closed":
        kw["closure_reason"] = "reintegrated"
    if to_stage in ("missing", "closure_pending") or (from_stage, to_stage) in (("closed", "assessed"),
                                                                              ("tracing", "reunified")):
        kw["reason"] = "Fictional reason."
    return kw


def test_the_table_matches_the_design():
    assert set(TRANSITIONS["follow_up"]) == {"closure_pending", "assessed"}
    assert MANAGER_ONLY == {("closure_pending", "closed"), ("missing", "closed"), ("closed", "assessed")}
    assert "missing" in allowed_targets("tracing") and "missing" not in allowed_targets("closed")
    assert set(OPEN_STAGES) == set(STAGES) - {"closed", "missing"}


@pytest.mark.parametrize("from_stage, to_stage", ALLOWED)
def test_every_allowed_transition(manager, from_stage, to_stage):
    child, last = child_at(from_stage, manager)
    version = child.version
    record = transition(child, to_stage, manager, occurred_on=last, today=TODAY, **extras(from_stage, to_stage))
    assert child.stage == to_stage and child.stage_since == last
    assert child.version == version + 1
    assert record.from_stage == from_stage and record.to_stage == to_stage
    stages = db.session.execute(
        db.select(StageTransition.to_stage).where(StageTransition.child_id == child.id)
        .order_by(StageTransition.seq)).scalars().all()
    assert stages == ["identified", *PATH_TO[from_stage], to_stage]


@pytest.mark.parametrize("from_stage, to_stage", REFUSED)
def test_every_other_transition_is_refused_naming_the_allowed(manager, from_stage, to_stage):
    child, last = child_at(from_stage, manager)
    with pytest.raises(InvalidTransition) as refused:
        transition(child, to_stage, manager, occurred_on=last, today=TODAY, **extras(from_stage, to_stage))
    assert refused.value.details["allowed"] == list(allowed_targets(from_stage))
    assert child.stage == from_stage


@pytest.mark.parametrize("from_stage, to_stage", sorted(MANAGER_ONLY))
def test_manager_only_moves_refuse_caseworkers(manager, from_stage, to_stage):
    caseworker = Actor(user=make_user("caseworker"), source="api")
    child, last = child_at(from_stage, manager)
    with pytest.raises(ManagerOnly):
        transition(child, to_stage, caseworker, occurred_on=last, today=TODAY, **extras(from_stage, to_stage))


def test_closing_needs_a_reason_and_reopening_needs_why(manager):
    child, last = child_at("closure_pending", manager)
    with pytest.raises(FieldErrors) as missing_reason:
        transition(child, "closed", manager, occurred_on=last, today=TODAY)
    assert "closure_reason" in missing_reason.value.errors
    transition(child, "closed", manager, occurred_on=last, today=TODAY, closure_reason="aged_out")
    with pytest.raises(FieldErrors) as no_why:
        transition(child, "assessed", manager, occurred_on=last, today=TODAY)
    assert "reason" in no_why.value.errors


def test_dates_cannot_be_in_the_future_or_before_the_current_stage(manager):
    child, last = child_at("registered", manager)
    with pytest.raises(FieldErrors) as future:
        transition(child, "assessed", manager, occurred_on=date(2027, 1, 1), today=TODAY)
    assert "future" in future.value.errors["occurred_on"][0]
    with pytest.raises(FieldErrors) as early:
        transition(child, "assessed", manager, occurred_on=date(2020, 1, 1), today=TODAY)
    assert "before the current stage" in early.value.errors["occurred_on"][0]


def test_early_closure_proposal_needs_a_written_reason(manager):
    child, last = child_at("follow_up", manager)
    with pytest.raises(FieldErrors) as early:
        transition(child, "closure_pending", manager, occurred_on=last, today=TODAY)
    assert "minimum of 365" in early.value.errors["reason"][0]
    transition(child, "closure_pending", manager, occurred_on=last, today=TODAY, reason="Family moved; transfer.")
    assert child.stage == "closure_pending"


def test_a_new_child_starts_identified_with_a_first_transition(manager):
    child = make_child()
    assert child.stage == "identified" and child.version == 1
    first = db.session.execute(db.select(StageTransition).where(StageTransition.child_id == child.id)).scalar_one()
    assert first.from_stage is None and first.to_stage == "identified"
