"""Device enrolment and revocation through the CLI and the manager JSON API."""

import json
import uuid

from models import AuditEvent, Device, db
from tests.factories import make_user, token_for
from tests.sync_server_helpers import envelope


def test_cli_enroll_list_revoke(app, runner, client):
    with app.app_context():
        make_user("caseworker", username="cw.cli")
        make_user("analyst", username="an.cli")
        db.session.commit()
    result = runner.invoke(args=["devices", "enroll", "--user", "cw.cli", "--label", "Tecno 3", "--json"])
    assert result.exit_code == 0, result.output
    enrolled = json.loads(result.output)
    token = enrolled["token"]
    assert token.startswith(enrolled["device_id"] + ".")
    with app.app_context():
        device = db.session.get(Device, uuid.UUID(enrolled["device_id"]))
        assert token.split(".", 1)[1] not in device.token_hash  # only the hash is kept
        assert device.token_matches(token.split(".", 1)[1])
    refused = runner.invoke(args=["devices", "enroll", "--user", "an.cli", "--label", "X"])
    assert refused.exit_code != 0 and "caseworker" in refused.output
    human = runner.invoke(args=["devices", "enroll", "--user", "cw.cli", "--label", "Spare"])
    assert "shown once" in human.output
    listed = runner.invoke(args=["devices", "list"])
    assert "Tecno 3" in listed.output and "active" in listed.output
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/sync/pull", headers=headers).status_code == 200
    revoked = runner.invoke(args=["devices", "revoke", enrolled["device_id"], "--wipe"])
    assert revoked.exit_code == 0 and "with wipe" in revoked.output
    response = client.post("/api/v1/sync/push", json=envelope(), headers=headers)
    assert response.status_code == 403 and response.get_json()["wipe"] is True
    assert "revoked+wipe" in runner.invoke(args=["devices", "list"]).output
    assert runner.invoke(args=["devices", "revoke", "nope"]).exit_code != 0


def test_api_enrol_list_revoke_for_managers_only(app, client):
    with app.app_context():
        manager = make_user("manager", username="mgr.dev")
        cw = make_user("caseworker", username="cw.dev")
        admin = make_user("admin", username="admin.dev")
        db.session.commit()
        mgr_headers = token_for(client, manager)
        cw_headers = token_for(client, cw)
        admin_headers = token_for(client, admin)
    assert client.post("/api/v1/devices", json={"user": "cw.dev", "label": "P"}, headers=cw_headers).status_code == 403
    # An admin sees no child, and a device token reads a caseload: admins list and revoke, never enrol.
    assert client.post("/api/v1/devices", json={"user": "cw.dev", "label": "P"}, headers=admin_headers).status_code == 403
    bad = client.post("/api/v1/devices", json={"user": "ghost", "label": "P"}, headers=mgr_headers)
    assert bad.status_code == 422 and "user" in bad.get_json()["error"]["details"]["fields"]
    created = client.post("/api/v1/devices", json={"user": "cw.dev", "label": "Phone A"}, headers=mgr_headers)
    assert created.status_code == 201
    device = created.get_json()
    assert set(device) >= {"device_id", "token"}
    listed = client.get("/api/v1/devices", headers=mgr_headers).get_json()["items"]
    assert [d["device_id"] for d in listed] == [device["device_id"]]
    assert "token" not in listed[0]
    assert client.get("/api/v1/devices", headers=admin_headers).get_json()["items"] == listed
    sync_headers = {"Authorization": f"Bearer {device['token']}"}
    assert client.get("/api/v1/sync/pull", headers=sync_headers).status_code == 200
    revoked = client.post(f"/api/v1/devices/{device['device_id']}/revoke", json={"wipe": True}, headers=mgr_headers)
    assert revoked.status_code == 200 and revoked.get_json()["wipe"] is True
    denied = client.get("/api/v1/sync/pull", headers=sync_headers)
    assert denied.status_code == 403 and denied.get_json() == {
        "error": {"code": "device_revoked", "message": denied.get_json()["error"]["message"], "details": {}},
        "wipe": True}
    assert client.post(f"/api/v1/devices/{uuid.uuid4()}/revoke", json={}, headers=mgr_headers).status_code == 404
    with app.app_context():
        actions = db.session.execute(db.select(AuditEvent.action).where(AuditEvent.action.like("device.%"))).scalars().all()
        assert sorted(actions) == ["device.enroll", "device.revoke"]
