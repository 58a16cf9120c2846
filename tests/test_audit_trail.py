"""Every response that shows children's personal values leaves an audit row naming them, and every
write on every path names the child it changed (finding 2 of issue 8). Managers read that trail;
admins read sign-ins, accounts and devices. All names are fictional."""

from models import Actor, AuditEvent, AuditEventChild, Child, db
from tests.factories import make_child, make_user, token_for, walk
from tests.sync_server_helpers import child_fields, mutation, new_id, people_and_phones, user_named
from tests.web_client import post, sign_in


def events(action):
    return db.session.execute(db.select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).scalars().all()


def children_of(event) -> set:
    return set(db.session.execute(db.select(AuditEventChild.child_id)
                                  .where(AuditEventChild.event_id == event.id)).scalars())


def caseload(app, n=3):
    with app.app_context():
        manager = make_user("manager", username="audit.manager")
        cw = make_user("caseworker", username="audit.cw")
        make_user("admin", username="audit.admin")
        ids = [make_child(cw, Actor(user=manager, source="api"), given_name=f"Fictional{i}").id for i in range(n)]
        db.session.commit()
        return manager.id, cw.id, ids


def test_api_lists_and_a_childs_records_are_audited_with_the_children_shown(app, client):
    manager, cw, ids = caseload(app)
    with app.app_context():
        headers = token_for(client, user_named("audit.cw"))
    assert client.get("/api/v1/children?per_page=2", headers=headers).status_code == 200
    assert client.get(f"/api/v1/children/{ids[0]}/transitions", headers=headers).status_code == 200
    assert client.get(f"/api/v1/children/{ids[1]}/followups", headers=headers).status_code == 200
    response = client.post(f"/api/v1/children/{ids[2]}/assessments", headers=headers,
                           json={"kind": "health", "assessed_on": "2026-11-20", "notes": "Fictional note"})
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        [listed] = events("child.list")
        assert listed.actor_id == cw and listed.details["children"] == 2
        assert len(children_of(listed)) == 2 and children_of(listed) <= set(ids)
        assert events("stage_transition.list")[0].child_id == ids[0]
        assert events("followup.list")[0].child_id == ids[1]
        [created] = events("assessment.create")
        assert created.child_id == ids[2] and created.target == response.get_json()["id"]
        # The trail holds ids and counts, never a value shown.
        for event in db.session.execute(db.select(AuditEvent)).scalars():
            assert "Fictional" not in repr(event.details)


def test_the_web_children_list_names_the_children_on_the_page(app, client):
    manager, cw, ids = caseload(app)
    sign_in(client, "audit.manager")
    assert client.get("/children").status_code == 200
    with app.app_context():
        [listed] = events("child.list")
        assert listed.actor_id == manager and children_of(listed) == set(ids)


def test_each_pull_page_and_each_push_batch_names_its_children(app, client):
    phones = people_and_phones(app, client, n_caseworkers=1)
    phone = phones["cw1"]
    child_id = new_id()
    [result] = phone.push_ok(mutation("child", child_id, fields=child_fields()))
    assert result["status"] == "applied", result
    changes = phone.pull_all()
    assert any(c["id"] == child_id for c in changes)
    with app.app_context():
        [pushed] = events("sync.push")
        assert {str(c) for c in children_of(pushed)} == {child_id} and pushed.device_id is not None
        pulls = events("sync.pull")
        assert pulls and {str(c) for c in children_of(pulls[0])} == {child_id}
        assert pulls[0].details["children"] == 1


def test_a_pull_page_streamed_in_several_pieces_is_audited(app, client, monkeypatch):
    """A page larger than one piece of the stream (a first pull's pages are) finishes after its view
    returned, in the stream's own context: it is audited there too, with every child it carried."""
    from server import sync_endpoint

    phone = people_and_phones(app, client, n_caseworkers=1)["cw1"]
    ids = {new_id() for _ in range(3)}
    phone.push_ok(*[mutation("child", child_id, fields=child_fields()) for child_id in ids])
    monkeypatch.setattr(sync_endpoint, "STREAM_CHUNK", 1)  # every change its own piece
    for gzip in (False, True):
        response = client.get("/api/v1/sync/pull", headers={
            **phone.headers, **({"Accept-Encoding": "gzip"} if gzip else {})})
        assert response.status_code == 200 and response.get_data()
    with app.app_context():
        pulls = events("sync.pull")
        assert len(pulls) == 2
        assert all({str(c) for c in children_of(pull)} >= ids and pull.device_id is not None for pull in pulls)


def test_managers_read_the_trail_of_children_and_admins_the_rest(app, client):
    manager, cw, ids = caseload(app)
    sign_in(client, "audit.cw")
    client.get("/children")
    post(client, "/logout")
    sign_in(client, "audit.manager")
    with app.app_context():
        case_code = db.session.get(Child, ids[0]).case_code
    page = client.get("/audit", query_string={"case_code": case_code}).get_data(as_text=True)
    assert "child.list" in page and "audit.cw" in page  # found through the page's child ids
    assert "login" not in page.split("<tbody>")[1]
    post(client, "/logout")
    sign_in(client, "audit.admin")
    page = client.get("/audit").get_data(as_text=True)
    body = page.split("<tbody>")[1]
    assert "login" in body and "child.list" not in body


def test_the_approvals_page_names_the_children_whose_closure_it_shows(app, client):
    with app.app_context():
        manager = make_user("manager", username="audit.manager")
        cw = make_user("caseworker", username="audit.cw")
        boss = Actor(user=manager, source="web")
        child = make_child(cw, boss)
        walk(child, ["registered", "assessed", "reunified", "follow_up", "closure_pending"], boss,
             reason="Fictional reason, early closure.")
        child_id = child.id
        db.session.commit()
    sign_in(client, "audit.manager")
    assert client.get("/approvals").status_code == 200
    with app.app_context():
        [shown] = events("closure.list")
        assert children_of(shown) == {child_id}
