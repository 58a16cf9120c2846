"""The reference client's offline journey end to end, against the real app (in-process): register
children offline, sync, edit on two devices, sync both, see the conflict, resolve it as a manager,
sync again, and both devices converge."""

import random
import uuid

import pytest

from models import Child, db
from sync.client import SyncClient
from tests.factories import make_user, token_for
from tests.sync_devices import PASSPHRASE, FlaskTransport, enrol_device


@pytest.fixture
def devices(app, client, tmp_path):
    with app.app_context():
        caseworker = make_user("caseworker")
        manager = make_user("manager")
        tokens = [enrol_device(caseworker, "Phone A"), enrol_device(caseworker, "Tablet B")]
        db.session.commit()
        manager_headers = token_for(client, manager)
        username = caseworker.username
    made = [SyncClient("http://homecoming.test", token, str(tmp_path / f"device{i}.sqlite"), passphrase=PASSPHRASE,
                       transport=FlaskTransport(client), sleep=lambda s: None, rng=random.Random(i))
            for i, token in enumerate(tokens)]
    yield made, manager_headers, username
    for device in made:
        device.close()


def items(body):
    return body["items"] if isinstance(body, dict) else body


def test_offline_journey_two_devices_conflict_resolved_and_converged(app, client, devices):
    (phone, tablet), manager, username = devices

    # Offline for days: three children registered, each with consent, one moved to registered.
    ids = []
    for i in range(3):
        child_id = phone.record("child", {"sex": "female" if i % 2 else "male", "given_name": f"Fictional{i}",
                                          "family_name": "Journey", "district": "Kitgum",
                                          "caseworker": username, "identified_on": "2026-11-20",
                                          "armed_group": "Fictional group"})
        phone.record("consent", {"child_id": child_id, "purpose": "services", "given_by": "caregiver",
                                 "given_on": "2026-11-21"})
        ids.append(child_id)
    phone.record("stage_transition", {"child_id": ids[0], "to_stage": "registered", "occurred_on": "2026-11-22"})
    assert len(phone.pending()) == 7

    report = phone.sync()
    assert (report.applied, report.rejected, phone.failed()) == (7, 0, [])
    assert phone.get("child", ids[0])["stage"] == "registered"  # derived by the server, pulled back
    assert "armed_group" not in phone.get("child", ids[1])  # restricted: gone from the device once uploaded
    with app.app_context():
        assert db.session.get(Child, uuid.UUID(ids[1])).armed_group == "Fictional group"

    tablet.sync()
    assert {c["id"] for c in tablet.records("child")} == set(ids)
    assert tablet.version("child", ids[1]) == phone.version("child", ids[1])

    # Both devices edit the same child offline: one field each, and one field both.
    phone.record("child", {"risk_level": "high", "current_location": "Fictional Pabo"}, id=ids[1])
    tablet.record("child", {"risk_level": "low", "disability": True}, id=ids[1])
    assert phone.sync().applied == 1
    report = tablet.sync()
    assert report.conflicts == 1
    (mine,) = tablet.conflicts()
    assert mine["fields"] == ["risk_level"]
    shown = tablet.get("child", ids[1])
    # The fields nobody else touched applied; the disputed one shows the server's value until resolved.
    assert shown["disability"] is True and shown["current_location"] == "Fictional Pabo"
    assert shown["risk_level"] == "high"

    # The manager sees the conflict with both values and keeps the tablet's.
    listed = items(client.get(f"/api/v1/conflicts?child_id={ids[1]}", headers=manager).get_json())
    assert [c["id"] for c in listed] == [mine["conflict_id"]]
    detail = client.get(f"/api/v1/conflicts/{mine['conflict_id']}", headers=manager).get_json()
    assert "risk_level" in str(detail) and "low" in str(detail) and "high" in str(detail)
    resolved = client.post(f"/api/v1/conflicts/{mine['conflict_id']}/resolve", headers=manager,
                           json={"fields": {"risk_level": "device"}})
    assert resolved.status_code == 200, resolved.get_json()
    assert items(client.get(f"/api/v1/conflicts?child_id={ids[1]}", headers=manager).get_json()) == []

    phone.sync()
    tablet.sync()
    for device in (phone, tablet):
        child = device.get("child", ids[1])
        assert (child["risk_level"], child["disability"], child["current_location"]) == \
            ("low", True, "Fictional Pabo")
    assert phone.version("child", ids[1]) == tablet.version("child", ids[1])
    assert phone.records("child") == tablet.records("child")
    assert phone.pending() == tablet.pending() == []
    with app.app_context():
        assert db.session.get(Child, uuid.UUID(ids[1])).needs_review is False


def test_revoked_device_wipes_itself_on_the_next_sync_and_a_kept_one_does_not(app, client, devices, tmp_path):
    from models import Device
    from sync.client import DeviceRevoked
    from sync.devices import revoke_device

    (phone, tablet), _manager, username = devices
    for device in (phone, tablet):
        device.record("child", {"sex": "male", "given_name": "Fictional", "caseworker": username})
        device.sync()
    with app.app_context():
        phone_row, tablet_row = db.session.execute(db.select(Device).order_by(Device.label)).scalars().all()
        assert (phone_row.label, tablet_row.label) == ("Phone A", "Tablet B")
        revoke_device(phone_row, by=None, wipe=True)
        revoke_device(tablet_row, by=None, wipe=False)
        db.session.commit()
    phone.record("child", {"sex": "female", "given_name": "Fictional-unsent"})
    with pytest.raises(DeviceRevoked) as wiped:
        phone.sync()
    assert wiped.value.wipe is True
    assert not any(p.name.startswith("device0.sqlite") for p in tmp_path.iterdir())
    with pytest.raises(DeviceRevoked) as kept:
        tablet.sync()
    assert kept.value.wipe is False and len(tablet.records("child")) == 2
