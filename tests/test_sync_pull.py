"""Pull (DESIGN §5): full, incremental and paged; reassignment; restricted fields; cursors."""

import base64
import gzip
import json

from models import Actor, Child, db
from models.records import create_record, delete_record, update_record
from tests.sync_server_helpers import (
    Phone,
    child_fields,
    get,
    mutation,
    new_id,
    people_and_phones,
    user_named,
)


def register_with_records(phone, n_children=3, visits=2):
    ids = []
    for _ in range(n_children):
        child_id = new_id()
        muts = [mutation("child", child_id, fields=child_fields(armed_group="Fictional group",
                                                                  recruitment="Fictional account"))]
        muts += [mutation("followup", new_id(), fields={"child_id": child_id, "kind": "visit",
                                                        "due_on": f"2026-12-0{v + 1}"}) for v in range(visits)]
        assert all(r["status"] == "applied" for r in phone.push_ok(*muts))
        ids.append(child_id)
    return ids


def keys(changes):
    return [(c["entity"], c["id"]) for c in changes]


def test_full_pull_then_incremental(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    mine = register_with_records(cw1, 3)
    register_with_records(cw2, 1)
    changes = cw1.pull_all()
    children = {c["id"] for c in changes if c["entity"] == "child"}
    assert children == set(mine)
    assert all(c["op"] == "upsert" for c in changes)
    assert len(changes) == len(set(keys(changes)))
    assert {c["entity"] for c in changes} >= {"child", "followup", "stage_transition"}
    # Nothing new: an empty page, the cursor still good.
    assert cw1.pull_all() == []
    cw1.push_ok(mutation("child", mine[0], op="update", base_version=1, fields={"risk_level": "high"}))
    later = cw1.pull_all()
    assert keys(later) == [("child", mine[0])] and later[0]["version"] == 2
    assert later[0]["data"]["risk_level"] == "high"


def test_paged_pull_interrupted_mid_way_skips_and_doubles_nothing(app, client):
    phones = people_and_phones(app, client)
    cw1 = phones["cw1"]
    register_with_records(cw1, 5, visits=3)  # 5 children x (child, first transition, 3 visits) = 25+
    everything = keys(Phone(client, cw1.token).pull_all(limit=1000))

    first = cw1.pull(limit=4).get_json()
    assert first["has_more"] is True and len(first["changes"]) == 4
    second = cw1.pull(first["cursor"], limit=4).get_json()
    # The device lost the second page (connection dropped before it stored it): it asks again with
    # the cursor it had stored, and gets the same page.
    again = cw1.pull(first["cursor"], limit=4).get_json()
    assert again["changes"] == second["changes"] and again["cursor"] == second["cursor"]
    got = keys(first["changes"]) + keys(again["changes"])
    cursor = again["cursor"]
    while True:
        page = cw1.pull(cursor, limit=4).get_json()
        assert len(page["changes"]) <= 4
        got += keys(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert got == everything and len(got) == len(set(got))


def test_a_change_made_between_pages_is_not_skipped(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    ids = register_with_records(cw1, 3, visits=1)
    first = cw1.pull(limit=2).get_json()
    cw1.push_ok(mutation("child", ids[0], op="update", base_version=1, fields={"district": "Agago"}))
    got, cursor = first["changes"], first["cursor"]
    while True:
        page = cw1.pull(cursor, limit=2).get_json()
        got += page["changes"]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    latest = [c for c in got if c["id"] == ids[0]][-1]
    assert latest["version"] == 2 and latest["data"]["district"] == "Agago"


def test_reassignment_removes_from_one_device_and_adds_to_the_other(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    child_id = register_with_records(cw1, 1, visits=2)[0]
    cw1.pull_all()
    cw2.pull_all()
    with app.app_context():
        child = get(Child, child_id)
        update_record(child, {"caseworker": "cw2"}, Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    removed = cw1.pull_all()
    assert ("child", child_id) in keys(removed)
    assert all(c["op"] == "remove" for c in removed)
    assert {c["entity"] for c in removed} == {"child", "followup", "stage_transition"}
    added = cw2.pull_all()
    assert all(c["op"] == "upsert" for c in added)
    assert {c["entity"] for c in added} == {"child", "followup", "stage_transition"}
    assert {c["id"] for c in added if c["entity"] != "child"} == {c["id"] for c in removed if c["entity"] != "child"}
    assert len(keys(added)) == len(set(keys(added)))
    # After the move cw2's device owns the child: its edits apply, cw1's are out of scope.
    assert cw2.push_ok(mutation("child", child_id, op="update", base_version=2,
                                fields={"risk_level": "low"}))[0]["status"] == "applied"
    assert cw1.push_ok(mutation("child", child_id, op="update", base_version=1,
                                fields={"risk_level": "high"}))[0]["code"] == "out_of_scope"


def test_a_child_gained_and_handed_on_is_never_sent_even_across_pages(app, client):
    phones = people_and_phones(app, client, 3)
    child_id = register_with_records(phones["cw1"], 1, visits=1)[0]
    phones["cw2"].pull_all()
    with app.app_context():
        manager = Actor(user=user_named("mgr"), source="api")
        update_record(get(Child, child_id), {"caseworker": "cw2"}, manager)
        db.session.commit()
        update_record(get(Child, child_id), {"caseworker": "cw3"}, manager)
        db.session.commit()
    # One change a page puts the "add" and the "remove" on different pages: the first must not carry
    # the child's records, which are cw3's by the time it is read.
    changes = phones["cw2"].pull_all(limit=1)
    assert [c for c in changes if c["op"] == "upsert"] == []
    assert {c["entity"] for c in phones["cw3"].pull_all()} == {"child", "followup", "stage_transition"}


def test_deleted_records_come_as_remove_and_are_absent_from_a_full_pull(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = register_with_records(cw1, 1, visits=1)[0]
    cw1.pull_all()
    with app.app_context():
        from models import Followup

        followup = db.session.execute(db.select(Followup)).scalars().first()
        followup_id = str(followup.id)
        delete_record(followup, Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    assert cw1.pull_all() == [{"entity": "followup", "id": followup_id, "version": 2, "op": "remove"}]
    fresh = cw1.pull_all(from_cursor=None)
    assert ("followup", followup_id) not in keys(fresh) and ("child", child_id) in keys(fresh)


def test_a_deleted_child_is_removed_with_its_records(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    child_id = register_with_records(cw1, 1, visits=2)[0]
    before = {c["id"] for c in cw1.pull_all()}
    with app.app_context():
        delete_record(get(Child, child_id), Actor(user=user_named("mgr"), source="api"))
        db.session.commit()
    removed = cw1.pull_all()
    assert all(c["op"] == "remove" for c in removed)
    assert {c["id"] for c in removed} == before  # the child, its first transition and both visits


def test_restricted_fields_are_never_pulled(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    register_with_records(cw1, 1)
    changes = cw1.pull_all()
    child = next(c for c in changes if c["entity"] == "child")
    assert child["data"]["given_name"] == "Fictional"  # personal: the caseworker's own case
    for field in ("armed_group", "recruitment", "role_in_group", "sexual_violence", "restricted_notes",
                  "date_joined", "date_left", "how_left"):
        assert field not in child["data"]
    assert "Fictional group" not in json.dumps(changes)


def test_open_alerts_of_the_caseworker_are_pulled_and_leave_when_closed(app, client):
    phones = people_and_phones(app, client)
    cw1 = phones["cw1"]
    child_id = register_with_records(cw1, 1, visits=0)[0]
    with app.app_context():
        system = Actor(user=None, source="system")
        alert = create_record("alert", {"key": f"{child_id}:test:1", "rule": "test", "severity": "urgent",
                                        "child_id": get(Child, child_id).id, "recipient_id": user_named("cw1").id}, system)
        done = create_record("alert", {"key": f"{child_id}:test:2", "rule": "test", "severity": "info",
                                       "child_id": get(Child, child_id).id, "recipient_id": user_named("cw1").id,
                                       "status": "resolved"}, system)
        db.session.commit()
        alert_id, done_id = str(alert.id), str(done.id)
    full = cw1.pull_all()
    assert ("alert", alert_id) in keys(full) and ("alert", done_id) not in keys(full)
    assert not [c for c in phones["cw2"].pull_all() if c["entity"] == "alert"]
    cw1.push_ok(mutation("alert", alert_id, op="update", base_version=1, fields={"status": "acknowledged"}))
    assert cw1.pull_all() == [{"entity": "alert", "id": alert_id, "version": 2, "op": "remove"}]


def test_cursors_are_bound_to_their_device_and_tamper_proof(app, client):
    phones = people_and_phones(app, client)
    register_with_records(phones["cw1"], 1)
    cursor = phones["cw1"].pull().get_json()["cursor"]
    other = phones["cw2"].pull(cursor)
    assert other.status_code == 400 and other.get_json()["error"]["code"] == "invalid_cursor"
    for garbage in ("garbage", "%%%", base64.urlsafe_b64encode(b"x:1:y").decode()):
        response = phones["cw1"].pull(garbage)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_cursor"
    # Changing the sequence number inside a real cursor breaks its signature.
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    device_id, seq, signature = text.split(":")
    forged = base64.urlsafe_b64encode(f"{device_id}:{int(seq) - 1}:{signature}".encode()).decode()
    assert phones["cw1"].pull(forged).status_code == 400
    bad_limit = phones["cw1"].pull(limit="lots")
    assert bad_limit.status_code == 422


def test_resync_required_when_the_server_cannot_answer_the_cursor(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    register_with_records(cw1, 2)
    cursor = cw1.pull().get_json()["cursor"]
    # A database restored from an older backup: the device's cursor is ahead of the server.
    with app.app_context():
        db.session.execute(db.text("UPDATE change_counter SET value = 1"))
        db.session.commit()
    response = cw1.pull(cursor)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "resync_required"
    with app.app_context():
        db.session.execute(db.text("UPDATE change_counter SET value = 1000"))
        db.session.commit()
    app.config["SYNC_RESYNC_BEFORE_SEQ"] = 500  # changes before 500 were compacted away
    response = cw1.pull(cursor)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "resync_required"
    assert cw1.pull().status_code == 200  # starting again from empty always works


def test_pull_is_gzipped_when_the_device_accepts_it(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    register_with_records(cw1, 2)
    plain = cw1.pull().get_json()
    response = client.get("/api/v1/sync/pull", headers={**cw1.headers, "Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    body = json.loads(gzip.decompress(response.get_data()))
    assert body["changes"] == plain["changes"] and body["has_more"] is False
