"""The reference client with referrals, tracing requests and traces against the real app (in-process):
recorded offline, synced, stepped, handed on by a manager, and removed with their traces."""

import random
import uuid
from datetime import UTC, datetime

import pytest

from models import User, db
from models.referrals import Referral
from models.tracing import TracingRequest, update_request
from sync.client import SyncClient
from tests.factories import make_user
from tests.sync_devices import PASSPHRASE, FlaskTransport, enrol_device


@pytest.fixture
def phones(app, client, tmp_path):
    with app.app_context():
        people = [make_user("caseworker"), make_user("caseworker")]
        manager = make_user("manager")
        tokens = [enrol_device(person, f"Phone {i}") for i, person in enumerate(people)]
        db.session.commit()
        names = [person.username for person in people]
        manager_id = manager.id
    made = [SyncClient("http://homecoming.test", token, str(tmp_path / f"phone{i}.sqlite"), passphrase=PASSPHRASE,
                       transport=FlaskTransport(client), sleep=lambda s: None, rng=random.Random(i))
            for i, token in enumerate(tokens)]
    yield made, names, manager_id
    for phone in made:
        phone.close()


def test_referral_and_tracing_round_trip(app, phones):
    (phone, other), names, manager_id = phones
    child_id = phone.record("child", {"sex": "male", "given_name": "Fictional", "family_name": "Demo-Okot",
                                      "district": "Gulu", "identified_on": "2026-11-20"})
    phone.record("consent", {"child_id": child_id, "purpose": "referral", "given_by": "child",
                             "given_on": "2026-11-21"})
    referral_id = phone.record("referral", {"child_id": child_id, "service_type": "vocational_training",
                                            "provider_name": "Fictional Workshop", "reason": "Fictional"})
    request_id = phone.record("tracing_request", {
        "inquirer_name": "Fictional Father", "inquirer_relationship": "father", "inquirer_contact": "Fictional",
        "given_name": "Fictional", "sex": "female", "birth_year": 2012, "armed_group": "Fictional group"})
    # Done the day the request was recorded (the device's clock): not before the request.
    trace_id = phone.record("trace", {"request_id": request_id, "kind": "radio_announcement",
                                      "done_on": datetime.now(UTC).date().isoformat(), "note": "Fictional"})
    assert [t["id"] for t in phone.records("trace", request_id)] == [trace_id]  # listed under its request

    report = phone.sync()
    assert (report.applied, report.rejected, phone.failed()) == (5, 0, []), phone.failed()
    assert phone.get("referral", referral_id)["status"] == "proposed"
    assert "armed_group" not in phone.get("tracing_request", request_id)  # dropped once uploaded
    assert phone.get("tracing_request", request_id)["caseworker"] == names[0]

    # Steps recorded offline one after another go as one mutation each, in order.
    for status in ("sent", "accepted", "completed"):
        phone.record("referral", {"status": status}, id=referral_id)
    assert len(phone.pending()) == 3
    assert phone.sync().applied == 3 and phone.get("referral", referral_id)["status"] == "completed"
    phone.record("referral", {"status": "sent"}, id=referral_id)
    report = phone.sync()
    assert report.rejected == 1 and phone.failed()[0]["code"] == "invalid_transition"
    phone.dismiss(phone.failed()[0]["mutation_id"])
    assert phone.get("referral", referral_id)["status"] == "completed"  # the server's copy again

    with app.app_context():
        assert db.session.get(Referral, uuid.UUID(referral_id)).status == "completed"
        update_request(db.session.get(TracingRequest, uuid.UUID(request_id)), {"caseworker": names[1]},
                       db.session.get(User, manager_id), "web")
        db.session.commit()
    phone.sync()
    assert phone.get("tracing_request", request_id) is None and phone.get("trace", trace_id) is None
    other.sync()
    assert other.get("tracing_request", request_id)["inquirer_name"] == "Fictional Father"
    assert [t["id"] for t in other.records("trace", request_id)] == [trace_id]
    assert other.get("referral", referral_id) is None  # the child stays in the first caseload
