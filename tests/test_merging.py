"""Merging two registrations of one child (models.merging): records moved with a new version and a
history row each, the child's differing values kept as conflicts, the merge audited, the refusals.
Every name here is fictional."""

from datetime import date

import pytest

from models import Actor, AuditEvent, Child, db
from models.care import Assessment
from models.errors import Problem
from models.followups import Followup
from models.history import RecordHistory
from models.matching import MatchCandidate, decide, sweep
from models.merging import merge_children, merge_match
from models.records import create_record
from models.syncstate import Conflict
from models.tracing import TracingLink, create_request, link
from tests.factories import make_child, make_user, walk

TWIN = {"given_name": "Fictional Ocen", "family_name": "Lakwena", "sex": "male", "birth_year": 2010,
        "district": "Gulu", "village": "Fictional Paibona"}


@pytest.fixture
def pair(ctx):
    manager = make_user("manager", username="m.manager")
    first_cw, second_cw = make_user("caseworker", username="m.first"), make_user("caseworker", username="m.second")
    boss = Actor(user=manager, source="web")
    older = make_child(first_cw, **TWIN, risk_level="high", family_contacts=None)
    newer = make_child(second_cw, **{**TWIN, "given_name": "Fictional Ochen", "village": "Fictional Pabbo"},
                       family_contacts="Fictional uncle, Pabbo market", risk_level="high")
    walk(older, ["registered", "assessed"], boss)
    walk(newer, ["registered"], boss)
    visit = create_record("followup", {"child_id": newer.id, "kind": "visit", "due_on": date(2026, 1, 5),
                                       "status": "done", "completed_on": date(2026, 1, 5), "seen": True},
                          Actor(user=second_cw, source="api"))
    planned = create_record("followup", {"child_id": newer.id, "kind": "visit", "due_on": date(2026, 12, 20)},
                            Actor(user=second_cw, source="api"))
    assessment = create_record("assessment", {"child_id": newer.id, "kind": "health",
                                              "assessed_on": date(2026, 1, 4)}, Actor(user=second_cw, source="api"))
    sweep()
    candidate = db.session.execute(db.select(MatchCandidate).where(MatchCandidate.kind == "child_child")).scalar_one()
    db.session.commit()
    return {"manager": manager, "older": older, "newer": newer, "candidate": candidate, "visit": visit,
            "planned": planned, "assessment": assessment, "second_cw": second_cw}


def test_a_merge_moves_every_record_with_a_version_and_a_history_row(pair):
    older, newer, visit = pair["older"], pair["newer"], pair["visit"]
    versions = {visit.id: visit.version, pair["assessment"].id: pair["assessment"].version}
    result = merge_match(pair["candidate"], None, pair["manager"], source="web")
    db.session.commit()
    assert result.survivor.id == older.id and result.absorbed.id == newer.id  # the older registration
    db.session.expire_all()
    for model, record_id in ((Followup, visit.id), (Assessment, pair["assessment"].id)):
        record = db.session.get(model, record_id)
        assert record.child_id == older.id and record.version == versions[record_id] + 1
        row = db.session.execute(db.select(RecordHistory).where(
            RecordHistory.record_id == record_id, RecordHistory.version == record.version)).scalar_one()
        assert row.fields == ["child_id"] and row.actor_id == pair["manager"].id and row.child_id == older.id
    # The planned visit of the absorbed registration is cancelled; the survivor's plan governs.
    assert db.session.get(Followup, pair["planned"].id).status == "cancelled"
    # The absorbed child's transitions join the survivor's timeline; the survivor keeps its stage.
    assert db.session.get(Child, older.id).stage == "assessed" and result.absorbed_stage == "registered"
    gone = db.session.get(Child, newer.id)
    assert gone.merged_into == older.id and gone.deleted_at is not None  # soft: audit and history keep it
    assert pair["candidate"].status == "confirmed"
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "child.merge")).scalar_one()
    assert event.child_id == older.id and event.target == str(newer.id)
    assert "Fictional" not in str(event.details) and event.details["moved"] >= 4


def test_the_childs_own_values_are_kept_or_kept_as_conflicts(pair):
    older = pair["older"]
    result = merge_match(pair["candidate"], None, pair["manager"], source="web")
    db.session.commit()
    db.session.expire_all()
    survivor = db.session.get(Child, older.id)
    assert survivor.given_name == "Fictional Ocen" and survivor.village == "Fictional Paibona"
    # A value only the absorbed registration had fills the survivor's empty field.
    assert survivor.family_contacts == "Fictional uncle, Pabbo market" and "family_contacts" in result.filled
    conflict = db.session.get(Conflict, result.conflict.id)
    assert {"given_name", "village", "caseworker"} <= set(conflict.fields)
    assert conflict.server_values["village"] == "Fictional Paibona"
    assert conflict.device_values["village"] == "Fictional Pabbo"
    assert conflict.device_values["caseworker"] == "m.second" and conflict.status == "open"
    assert survivor.needs_review and conflict.child_id == older.id and conflict.record_id == older.id
    assert "risk_level" not in conflict.fields  # the same on both


def test_open_conflicts_and_tracing_links_move_to_the_survivor(pair):
    older, newer, manager = pair["older"], pair["newer"], pair["manager"]
    request = create_request({"inquirer_relationship": "mother", "given_name": "Fictional Ocen", "sex": "male"})
    found = link(request.id, newer.id, manager, override_reason="Fictional: the family came in person.")
    waiting = Conflict(child_id=newer.id, entity="child", record_id=newer.id, base_version=1, server_version=2,
                            fields=["risk_level"], base_values={"risk_level": None},
                            server_values={"risk_level": "high"}, device_values={"risk_level": "low"})
    db.session.add(waiting)
    db.session.commit()
    merge_match(pair["candidate"], older.id, manager, source="api")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(TracingLink, found.id).child_id == older.id
    moved = db.session.get(Conflict, waiting.id)
    assert moved.child_id == older.id and moved.record_id == older.id


def test_the_manager_chooses_the_survivor(pair):
    result = merge_match(pair["candidate"], pair["newer"].id, pair["manager"], source="web")
    assert result.survivor.id == pair["newer"].id
    assert db.session.get(Child, pair["older"].id).merged_into == pair["newer"].id


def test_refusals(pair):
    older, newer, manager = pair["older"], pair["newer"], pair["manager"]

    def refused(code, *args, **kw):
        with pytest.raises(Problem) as exc:
            merge_children(*args, **kw)
        db.session.rollback()
        assert exc.value.code == code, exc.value.message

    # Not confirmed yet (still pending), then dismissed pairs.
    refused("not_confirmed", older, newer, manager)
    refused("manager_only", older, newer, pair["second_cw"])
    refused("same_child", older, older, manager)
    stranger = make_child(pair["second_cw"], given_name="Fictional Akello", sex="female")
    db.session.commit()
    refused("not_confirmed", older, stranger, manager)
    with pytest.raises(Problem) as exc:
        merge_match(pair["candidate"], stranger.id, manager, source="web")
    assert exc.value.code == "validation_error"
    db.session.rollback()
    decide(pair["candidate"], "confirm", manager)
    merge_children(older, newer, manager)
    db.session.commit()
    refused("already_merged", older, newer, manager)
    refused("already_merged", newer, older, manager)
    # Nothing moved twice: one merge event.
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "child.merge")).scalar_one() == 1


def test_a_dismissed_pair_cannot_be_merged(pair):
    decide(pair["candidate"], "dismiss", pair["manager"])
    with pytest.raises(Problem) as exc:
        merge_match(pair["candidate"], None, pair["manager"], source="web")
    assert exc.value.code == "not_confirmed"


def test_the_api_merges_a_pair_and_refuses_in_the_one_error_shape(app, client, pair):
    from tests.factories import token_for

    manager, candidate = pair["manager"], pair["candidate"]
    heads = {"mgr": token_for(client, manager), "cw": token_for(client, pair["second_cw"])}
    older, newer = str(pair["older"].id), str(pair["newer"].id)
    assert client.post(f"/api/v1/matches/{candidate.id}/merge", json={}, headers=heads["cw"]).status_code == 403
    bad = client.post(f"/api/v1/matches/{candidate.id}/merge", json={"survivor_id": str(pair["visit"].id)},
                      headers=heads["mgr"])
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "validation_error"
    assert db.session.execute(db.select(MatchCandidate.status).where(
        MatchCandidate.id == candidate.id)).scalar_one() == "pending"  # a refusal decides nothing
    done = client.post(f"/api/v1/matches/{candidate.id}/merge", json={}, headers=heads["mgr"])
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["status"] == "confirmed" and body["merge"]["survivor_id"] == older
    assert body["merge"]["absorbed_id"] == newer and body["merge"]["moved"]["followup"] == 2
    assert "village" in body["merge"]["conflicting_fields"] and body["merge"]["absorbed_stage"] == "registered"
    again = client.post(f"/api/v1/matches/{candidate.id}/merge", json={}, headers=heads["mgr"])
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "already_merged"
    # The absorbed child is gone from the lists and its reads; the survivor has its records.
    assert client.get(f"/api/v1/children/{newer}", headers=heads["mgr"]).status_code == 404
    listed = client.get("/api/v1/children?per_page=200", headers=heads["mgr"]).get_json()
    assert newer not in {c["id"] for c in listed["items"]} and older in {c["id"] for c in listed["items"]}


def test_a_merge_conflict_is_resolved_field_by_field_like_any_other(pair):
    from sync.conflicts import resolve_conflict

    result = merge_match(pair["candidate"], None, pair["manager"], source="web")
    db.session.commit()
    conflict = db.session.get(Conflict, result.conflict.id)
    choices = {name: "server" for name in conflict.fields}
    choices.update(village="device", caseworker="device")  # the absorbed registration's village and caseworker
    resolve_conflict(conflict, choices, Actor(user=pair["manager"], source="web"))
    db.session.commit()
    db.session.expire_all()
    survivor = db.session.get(Child, pair["older"].id)
    assert survivor.village == "Fictional Pabbo" and survivor.caseworker_id == pair["second_cw"].id
    assert survivor.given_name == "Fictional Ocen" and not survivor.needs_review


def test_attachments_of_the_absorbed_child_move_to_the_survivor(pair):
    # Found from the child_id foreign key, like any later child-owned table; the file is sealed under
    # the attachment's own id, so moving the row keeps it readable.
    from models.attachments import Attachment

    photo = Attachment(child_id=pair["newer"].id, kind="image", content_type="image/png", size=10, sha256="0" * 64)
    db.session.add(photo)
    db.session.commit()
    merge_match(pair["candidate"], None, pair["manager"], source="web")
    db.session.commit()
    assert db.session.get(Attachment, photo.id).child_id == pair["older"].id
