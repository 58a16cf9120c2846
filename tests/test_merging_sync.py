"""Two registrations of one child are found and merged without losing a visit, end to end: two phones
register the same child, the sweep proposes the pair, a manager merges on the web, both phones pull
and see the right thing, and a stale push about the absorbed child is not lost. Every name here is
fictional."""

from models import AuditEvent, Child, db
from models.followups import Followup
from models.matching import MatchCandidate, sweep
from models.syncstate import Conflict
from tests.sync_server_helpers import child_fields, get, mutation, new_id, people_and_phones
from tests.web_client import post, sign_in, text

OLDER = child_fields(given_name="Fictional Okello", family_name="Lakwena", sex="male", district="Gulu",
                     birth_year=2010, village="Fictional Paibona")
NEWER = {**OLDER, "given_name": "Fictional Okelo", "village": "Fictional Pabbo",
         "family_contacts": "Fictional aunt at Pabbo market"}


def visit(child_id, day="2026-11-10", **kw):
    return {"child_id": str(child_id), "kind": "visit", "due_on": day, "status": "done", "completed_on": day,
            "seen": True, **kw}


def by_id(changes):
    return {(c["entity"], c["id"]): c for c in changes}


def test_two_registrations_are_found_and_merged_without_losing_a_visit(app, client):
    phones = people_and_phones(app, client)
    first, second = phones["cw1"], phones["cw2"]
    older, newer = new_id(), new_id()
    older_visit, newer_visit = new_id(), new_id()
    assert first.push_ok(mutation("child", older, fields=OLDER),
                         mutation("followup", older_visit, fields=visit(older)))[0]["status"] == "applied"
    assert second.push_ok(mutation("child", newer, fields=NEWER),
                          mutation("followup", newer_visit, fields=visit(newer, "2026-11-12")))[1]["status"] == "applied"
    first.pull_all(), second.pull_all()

    with app.app_context():
        sweep()  # children pushed by devices are matched by the scheduled sweep
        db.session.commit()
        candidate = db.session.execute(db.select(MatchCandidate).where(MatchCandidate.kind == "child_child")).scalar_one()
        older_code, newer_code = get(Child, older).case_code, get(Child, newer).case_code

    office = app.test_client()
    sign_in(office, "mgr")
    page = text(office.get(f"/matches/{candidate.id}"))
    assert "Confirm and merge" in page and "the older registration" in page
    merged = post(office, f"/matches/{candidate.id}/merge", {"survivor": older})
    assert merged.status_code == 302 and f"/children/{older}" in merged.headers["Location"]
    shown = text(office.get(merged.headers["Location"]))
    assert f"Case {newer_code} was merged into {older_code}" in shown and "choose on the conflicts page" in shown
    # The absorbed registration's page sends a manager to the case it was merged into.
    gone = office.get(f"/children/{newer}")
    assert gone.status_code == 302 and f"/children/{older}" in gone.headers["Location"]

    # The survivor's phone receives its child again (flagged for review) and the moved visit.
    got = by_id(first.pull_all())
    assert got[("child", older)]["op"] == "upsert" and got[("child", older)]["data"]["needs_review"] is True
    assert got[("followup", newer_visit)]["op"] == "upsert"
    assert got[("followup", newer_visit)]["data"]["child_id"] == older
    # The absorbed child's phone drops it and its records; it is sent nothing of the other caseload's.
    dropped = by_id(second.pull_all())
    assert dropped[("child", newer)]["op"] == "remove" and dropped[("followup", newer_visit)]["op"] == "remove"
    assert all(c["op"] == "remove" for c in dropped.values())

    # A stale push from the second phone, written before it pulled: a new visit for the absorbed child,
    # an edit of the absorbed child, an edit of its moved visit. None is lost.
    late_visit = new_id()
    results = second.push_ok(
        mutation("followup", late_visit, fields=visit(newer, "2026-11-20")),
        mutation("child", newer, op="update", base_version=1, fields={"risk_level": "high"}),
        mutation("child", newer, op="update", base_version=1, fields={"current_location": "Fictional Kitgum"}),
        mutation("followup", newer_visit, op="update", base_version=1, fields={"notes": "Fictional: at school."}))
    assert results[0]["status"] == "applied" and results[0]["merged_into"] == older
    assert results[1]["status"] == "applied" and results[1]["merged_into"] == older  # filled: the survivor had none
    assert [r["status"] for r in results[2:]] == ["applied", "applied"]
    clash = second.push_ok(mutation("child", newer, op="update", base_version=1, fields={"risk_level": "low"}))[0]
    assert clash["status"] == "conflict" and clash["merged_into"] == older and clash["conflicting_fields"] == ["risk_level"]

    with app.app_context():
        survivor = get(Child, older)
        visits = db.session.execute(db.select(Followup.id).where(Followup.child_id == survivor.id,
                                                                 Followup.status == "done")).scalars().all()
        assert {str(v) for v in visits} == {older_visit, newer_visit, late_visit}  # no visit lost
        assert get(Followup, newer_visit).notes == "Fictional: at school."
        assert survivor.risk_level == "high" and survivor.current_location == "Fictional Kitgum"
        conflicts = db.session.execute(db.select(Conflict).where(Conflict.child_id == survivor.id)).scalars().all()
        assert {c.device_values.get("risk_level") for c in conflicts} >= {"low"}
        assert {"given_name", "village", "caseworker"} <= {f for c in conflicts for f in c.fields}
        assert get(Child, newer).merged_into == survivor.id
        assert db.session.execute(db.select(AuditEvent.id).where(AuditEvent.action == "child.merge")).first()

    # The survivor's phone then receives the late visit under the survivor.
    later = by_id(first.pull_all())
    assert later[("followup", late_visit)]["data"]["child_id"] == older
    # The second phone gets only removals: the late visit now belongs to the other caseload.
    assert all(c["op"] == "remove" for c in second.pull_all())


def test_a_phone_whose_caseworker_holds_both_sees_the_records_move(app, client):
    phones = people_and_phones(app, client, n_caseworkers=1)
    phone = phones["cw1"]
    older, newer, newer_visit = new_id(), new_id(), new_id()
    phone.push_ok(mutation("child", older, fields=OLDER))
    phone.push_ok(mutation("child", newer, fields=NEWER), mutation("followup", newer_visit, fields=visit(newer)))
    phone.pull_all()
    with app.app_context():
        sweep()
        db.session.commit()
        candidate = db.session.execute(db.select(MatchCandidate)).scalar_one()
    office = app.test_client()
    sign_in(office, "mgr")
    assert post(office, f"/matches/{candidate.id}/merge", {}).status_code == 302  # default: the older one
    got = by_id(phone.pull_all())
    assert got[("child", newer)]["op"] == "remove"
    assert got[("followup", newer_visit)]["op"] == "upsert" and got[("followup", newer_visit)]["data"]["child_id"] == older
    assert got[("child", older)]["op"] == "upsert"


def test_a_stale_push_cannot_test_guesses_at_the_kept_cases_restricted_values(app, client):
    phones = people_and_phones(app, client)
    older, newer = new_id(), new_id()
    phones["cw1"].push_ok(mutation("child", older, fields={**OLDER, "armed_group": "Fictional group"}))
    phones["cw2"].push_ok(mutation("child", newer, fields=NEWER))
    with app.app_context():
        sweep()
        db.session.commit()
        candidate = db.session.execute(db.select(MatchCandidate)).scalar_one()
    office = app.test_client()
    sign_in(office, "mgr")
    assert post(office, f"/matches/{candidate.id}/merge", {"survivor": older}).status_code == 302
    # The stored value and another one get the same answer: a conflict for a manager.
    answers = [phones["cw2"].push_ok(mutation("child", newer, op="update", base_version=1,
                                              fields={"armed_group": guess}))[0] for guess in
               ("Fictional group", "Another fictional group")]
    assert [a["status"] for a in answers] == ["conflict", "conflict"]
    assert all(a["conflicting_fields"] == ["armed_group"] and a["merged_into"] == older for a in answers)
    with app.app_context():
        assert get(Child, older).armed_group == "Fictional group"
