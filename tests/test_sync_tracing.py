"""Tracing requests and traces by sync (issue 14): opened and edited offline by the caseworker who follows
them, merges and refused clashes, scope, duplicates, what a device pulls (never the armed group) and the
removals when a request is handed on or closed. Every name is fictional."""

from models import AuditEvent, RecordHistory, db
from models.tracing import Trace, TracingRequest, create_request, update_request
from tests.sync_server_helpers import mutation, new_id, people_and_phones, user_named


def request_fields(**kw):
    return {"inquirer_name": "Fictional Aunt", "inquirer_relationship": "aunt_uncle",
            "inquirer_contact": "Fictional 0700 000 000", "given_name": "Fictional", "other_names": "Demo-Ocen",
            "sex": "male", "birth_year": 2011, "district": "Kitgum", "armed_group": "Fictional group", **kw}


def trace_fields(request_id, **kw):
    return {"request_id": request_id, "kind": "home_visit", "done_on": "2026-11-21", "note": "Fictional visit", **kw}


def open_request(phone):
    rid = new_id()
    (result,) = phone.push_ok(mutation("tracing_request", rid, fields=request_fields()))
    assert result["status"] == "applied", result
    return rid


def by_id(model, record_id):
    import uuid

    return db.session.get(model, uuid.UUID(record_id))


def test_a_request_and_a_trace_opened_offline_reach_the_server_and_come_back_without_the_armed_group(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    rid, tid = new_id(), new_id()
    results = cw1.push_ok(mutation("tracing_request", rid, fields=request_fields(status="closed")),
                          mutation("trace", tid, fields=trace_fields(rid)))
    assert [(r["status"], r["version"]) for r in results] == [("applied", 1), ("applied", 1)]
    with app.app_context():
        request = by_id(TracingRequest, rid)
        assert (request.status, request.caseworker_id) == ("open", user_named("cw1").id)  # starts open
        assert request.armed_group == "Fictional group"  # a device may write it, never read it back
        assert by_id(Trace, tid).actor_id == user_named("cw1").id
        raw = db.session.execute(db.text("SELECT inquirer_name, armed_group FROM tracing_request")).one()
        assert "Fictional" not in str(raw)  # sealed at rest
        assert db.session.execute(db.select(db.func.count()).select_from(RecordHistory).where(
            RecordHistory.entity == "tracing_request")).scalar_one() == 1
    pulled = {c["entity"]: c for c in cw1.pull_all() if c["entity"] in ("tracing_request", "trace")}
    with app.app_context():  # the pull that showed the request names it in the audit
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "sync.pull")
                                   .order_by(AuditEvent.id.desc())).scalars().first()
        assert event.details["requests"] == [rid]
    assert pulled["tracing_request"]["data"]["inquirer_contact"] == "Fictional 0700 000 000"
    assert pulled["tracing_request"]["data"]["caseworker"] == "cw1"
    assert "armed_group" not in pulled["tracing_request"]["data"]
    assert pulled["trace"]["data"]["request_id"] == rid and pulled["trace"]["data"]["kind"] == "home_visit"


def test_edits_merge_and_a_clash_is_refused(app, client):
    cw1 = people_and_phones(app, client)["cw1"]
    rid = open_request(cw1)
    (edit,) = cw1.push_ok(mutation("tracing_request", rid, op="update", base_version=1,
                                   fields={"village": "Fictional Pabo"}))
    assert (edit["status"], edit["version"]) == ("applied", 2)
    with app.app_context():
        update_request(by_id(TracingRequest, rid), {"notes": "Fictional: seen at the market"},
                       user_named("mgr"), "web")
        db.session.commit()
    # The device last saw version 2; the manager changed the notes (version 3).
    (merged,) = cw1.push_ok(mutation("tracing_request", rid, op="update", base_version=2,
                                     fields={"parish": "Fictional Parish"}))
    assert (merged["status"], merged["version"]) == ("applied", 4)
    (clash,) = cw1.push_ok(mutation("tracing_request", rid, op="update", base_version=2,
                                    fields={"notes": "Fictional: other", "sub_county": "Fictional"}))
    assert clash["status"] == "rejected" and clash["code"] == "edit_conflict"
    assert list(clash["errors"]) == ["notes"]
    with app.app_context():
        request = by_id(TracingRequest, rid)
        assert (request.notes, request.sub_county, request.version) == ("Fictional: seen at the market", None, 4)
    # The armed group (restricted) changed since the base: refused whatever the device guesses, even the
    # stored value, so the answer tells nothing about it.
    with app.app_context():
        update_request(by_id(TracingRequest, rid), {"armed_group": "Fictional other group"}, user_named("mgr"), "web")
        db.session.commit()
    for guess in ("Fictional other group", "Fictional third group"):
        (result,) = cw1.push_ok(mutation("tracing_request", rid, op="update", base_version=4,
                                         fields={"armed_group": guess}))
        assert (result["status"], result["code"], list(result["errors"])) == ("rejected", "edit_conflict",
                                                                               ["armed_group"])
    (bad,) = cw1.push_ok(mutation("tracing_request", rid, op="update", base_version=5, fields={"sex": "robot"}))
    assert bad["code"] == "validation_error" and "sex" in bad["errors"]


def test_scope_duplicates_and_parents(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    rid = open_request(cw1)
    create = mutation("tracing_request", rid, fields=request_fields())
    assert cw1.push_ok(create)[0]["status"] == "duplicate"
    (clash,) = cw1.push_ok(mutation("tracing_request", rid, fields=request_fields(given_name="Other")))
    assert clash["code"] == "id_conflict"
    tid = new_id()
    trace = mutation("trace", tid, fields=trace_fields(rid))
    cw1.push_ok(trace)
    assert cw1.push_ok(mutation("trace", tid, fields=trace_fields(rid)))[0]["status"] == "duplicate"
    (changed,) = cw1.push_ok(mutation("trace", tid, op="update", base_version=1, fields={"note": "x"}))
    assert changed["code"] == "validation_error" and "op" in changed["errors"]
    for m in (mutation("tracing_request", rid, op="update", base_version=1, fields={"village": "x"}),
              mutation("trace", new_id(), fields=trace_fields(rid)),
              mutation("trace", new_id(), fields=trace_fields(new_id())),
              mutation("tracing_request", rid, fields=request_fields())):
        (result,) = cw2.push_ok(m)
        assert result["code"] == "out_of_scope", m
    (handed,) = cw1.push_ok(mutation("tracing_request", new_id(), fields=request_fields(caseworker="cw2")))
    assert handed["code"] == "out_of_scope"
    (early,) = cw1.push_ok(mutation("trace", new_id(), fields=trace_fields(rid, done_on="2026-01-01")))
    assert early["code"] == "validation_error" and "done_on" in early["errors"]
    bad = new_id()
    results = cw1.push_ok(mutation("tracing_request", bad, fields=request_fields(given_name=None, other_names=None)),
                          mutation("trace", new_id(), fields=trace_fields(bad)))
    assert [r["code"] for r in results] == ["validation_error", "parent_rejected"]


def test_a_request_handed_on_moves_between_devices_and_a_closed_one_is_removed(app, client):
    phones = people_and_phones(app, client)
    cw1, cw2 = phones["cw1"], phones["cw2"]
    rid, tid = open_request(cw1), new_id()
    cw1.push_ok(mutation("trace", tid, fields=trace_fields(rid)))
    with app.app_context():  # a manager opens one on the web for cw1: it reaches cw1's phone
        web = create_request({**request_fields(), "caseworker": "cw1"}, user_named("mgr"), "web")
        db.session.commit()
        web_id = str(web.id)
    assert {c["id"] for c in cw1.pull_all()} >= {rid, tid, web_id}
    cw2.pull_all()
    with app.app_context():
        update_request(by_id(TracingRequest, rid), {"caseworker": "cw2"}, user_named("mgr"), "web")
        db.session.commit()
    gone = {(c["entity"], c["id"], c["op"]) for c in cw1.pull_all()}
    assert gone == {("tracing_request", rid, "remove"), ("trace", tid, "remove")}
    came = {(c["entity"], c["id"], c["op"]) for c in cw2.pull_all()}
    assert came == {("tracing_request", rid, "upsert"), ("trace", tid, "upsert")}
    assert cw2.push_ok(mutation("trace", new_id(), fields=trace_fields(rid)))[0]["status"] == "applied"
    with app.app_context():
        update_request(by_id(TracingRequest, web_id), {"status": "closed"}, user_named("mgr"), "web")
        db.session.commit()
    assert [(c["id"], c["op"]) for c in cw1.pull_all()] == [(web_id, "remove")]
    # A device starting from empty gets only what it follows and is still open.
    fresh = {c["id"] for c in cw1.pull_all(from_cursor=None)}
    assert not fresh & {rid, tid, web_id}

