"""Finding 6: disabling a user revokes every device of theirs with a wipe (403 device_revoked,
wipe: true), says so on the users page, is audited, and re-enabling the user does not revive them."""

from models import AuditEvent, Device, db
from sync.devices import enroll_device
from tests.factories import make_user
from tests.sync_server_helpers import envelope
from tests.web_client import post, sign_in, text


def test_disabling_a_user_wipes_their_devices_for_good(app, client):
    with app.app_context():
        make_user("admin", username="dis.admin")
        manager = make_user("manager", username="dis.mgr")
        cw = make_user("caseworker", username="dis.cw")
        _, phone = enroll_device(cw, "Tecno 1", by=manager)
        _, tablet = enroll_device(cw, "Tablet 2", by=manager)
        db.session.commit()
        cw_id = cw.id
    for token in (phone, tablet):
        assert client.get("/api/v1/sync/pull", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sign_in(client, "dis.admin")
    done = post(client, f"/users/{cw_id}/disable", {"confirmed": "yes"}, follow_redirects=True)
    assert "2 devices revoked and told to wipe" in text(done)
    assert "2 revoked, wipe" in text(client.get("/users"))
    for token in (phone, tablet):
        response = client.post("/api/v1/sync/push", json=envelope(), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "device_revoked" and response.get_json()["wipe"] is True
    post(client, f"/users/{cw_id}/enable")
    for token in (phone, tablet):
        response = client.get("/api/v1/sync/pull", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403 and response.get_json()["wipe"] is True
    with app.app_context():
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.disable")).scalar_one()
        assert event.details["devices_wiped"] == 2 and len(event.details["device_ids"]) == 2
        revokes = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "device.revoke")).scalars().all()
        assert len(revokes) == 2 and all(e.details["wipe"] for e in revokes)
        assert all(d.wipe and d.revoked_at for d in db.session.execute(db.select(Device)).scalars())
