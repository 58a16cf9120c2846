"""The push envelope and device authentication: every refusal in the one JSON error shape."""

import gzip
import json
import uuid

from models import Child, Device, db
from sync.devices import revoke_device
from tests.sync_server_helpers import child_fields, envelope, mutation, new_id, people_and_phones

PUSH = "/api/v1/sync/push"


def error_of(response, status, code):
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_malformed_json_and_content_types(app, client):
    phone = people_and_phones(app, client, 1)["cw1"]
    error_of(client.post(PUSH, data=b'{"protocol": 1, "batch', headers={**phone.headers, "Content-Type": "application/json"}),
             400, "malformed_json")
    error_of(client.post(PUSH, data=b"protocol=1", headers={**phone.headers, "Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    error_of(client.post(PUSH, data=b"{}", headers={**phone.headers, "Content-Type": "application/json",
                                                    "Content-Encoding": "br"}), 415, "unsupported_media_type")
    error_of(client.post(PUSH, data=b"not gzip", headers={**phone.headers, "Content-Type": "application/json",
                                                          "Content-Encoding": "gzip"}), 400, "malformed_json")
    error_of(client.post(PUSH, json=[1, 2], headers=phone.headers), 422, "validation_error")


def test_gzip_body_and_gzip_answer(app, client):
    phone = people_and_phones(app, client, 1)["cw1"]
    child_id = new_id()
    body = gzip.compress(json.dumps(envelope(mutation("child", child_id, fields=child_fields()))).encode())
    response = client.post(PUSH, data=body, headers={**phone.headers, "Content-Type": "application/json",
                                                     "Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert response.status_code == 200
    results = json.loads(gzip.decompress(response.get_data()) if response.headers.get("Content-Encoding") == "gzip"
                         else response.get_data())["results"]
    assert results[0]["status"] == "applied"
    # Several results are worth compressing: the answer comes gzipped.
    many = envelope(*[mutation("child", new_id(), fields=child_fields()) for _ in range(12)])
    response = client.post(PUSH, json=many, headers={**phone.headers, "Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(response.get_data()))["results"]) == 12


def test_size_limits_answer_413_with_the_limit(app, client):
    phone = people_and_phones(app, client, 1)["cw1"]
    app.config["SYNC_MAX_MUTATIONS"] = 3
    too_many = envelope(*[mutation("child", new_id(), fields=child_fields()) for _ in range(4)])
    body = error_of(client.post(PUSH, json=too_many, headers=phone.headers), 413, "payload_too_large")
    assert "at most 3 mutations" in body["error"]["message"]
    app.config["MAX_CONTENT_LENGTH"] = 2000
    big = envelope(mutation("child", new_id(), fields=child_fields(family_contacts="x" * 900)),
                   mutation("child", new_id(), fields=child_fields(family_contacts="y" * 900)),
                   mutation("child", new_id(), fields=child_fields(family_contacts="z" * 900)))
    body = error_of(client.post(PUSH, json=big, headers=phone.headers), 413, "payload_too_large")
    assert "2000 bytes" in body["error"]["message"]
    # A small gzip body that inflates beyond the limit (a decompression bomb) is refused the same way.
    bomb = gzip.compress(b'{"protocol": 1, "pad": "' + b" " * 50_000 + b'"}')
    assert len(bomb) < 2000
    body = error_of(client.post(PUSH, data=bomb, headers={**phone.headers, "Content-Type": "application/json",
                                                          "Content-Encoding": "gzip"}), 413, "payload_too_large")
    assert "2000 bytes" in body["error"]["message"]
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Child)).scalar_one() == 0


def test_unknown_protocol_missing_fields_and_wrong_types(app, client):
    phone = people_and_phones(app, client, 1)["cw1"]
    body = error_of(phone.push(body={**envelope(), "protocol": 2}), 422, "validation_error")
    assert "protocol 1" in body["error"]["message"] and body["error"]["details"]["supported"] == [1]
    body = error_of(phone.push(body={"protocol": 1, "mutations": []}), 422, "validation_error")
    assert "batch_id" in body["error"]["details"]["fields"]
    missing = mutation("child", new_id(), fields=child_fields())
    del missing["mutation_id"]
    body = error_of(phone.push(missing), 422, "validation_error")
    assert body["error"]["details"]["fields"]["mutations"]["0"] == {"mutation_id": ["Missing data for required field."]}
    wrong = {**mutation("child", new_id()), "base_version": "one", "fields": [], "op": "delete", "entity": "soldier"}
    body = error_of(phone.push(wrong), 422, "validation_error")
    assert set(body["error"]["details"]["fields"]["mutations"]["0"]) == {"base_version", "fields", "op", "entity"}
    body = error_of(phone.push(body={**envelope(), "batch_id": "not-a-uuid", "extra": 1}), 422, "validation_error")
    assert set(body["error"]["details"]["fields"]) == {"batch_id", "_unknown"}  # an unknown key is counted, not named


def test_no_or_bad_token_is_401_and_revoked_is_403_with_the_wipe_flag(app, client):
    phones = people_and_phones(app, client, 2)
    body = json.dumps(envelope())
    error_of(client.post(PUSH, data=body, content_type="application/json"), 401, "unauthorized")
    token = phones["cw1"].token
    device_id, _, secret = token.partition(".")
    for bad in (f"{device_id}.wrong-secret", f"{new_id()}.{secret}", "nonsense", secret):
        error_of(client.post(PUSH, data=body, content_type="application/json",
                             headers={"Authorization": f"Bearer {bad}"}), 401, "unauthorized")
    assert phones["cw1"].pull().status_code == 200
    with app.app_context():
        device = db.session.get(Device, uuid.UUID(device_id))
        assert device.last_seen_at is not None
        revoke_device(device, by=None, wipe=False)
        other = db.session.execute(db.select(Device).where(Device.id != device.id)).scalar_one()
        revoke_device(other, by=None, wipe=True)
        db.session.commit()
    kept = error_of(phones["cw1"].push(), 403, "device_revoked")
    assert kept["wipe"] is False
    wiped = error_of(phones["cw2"].pull(), 403, "device_revoked")
    assert wiped["wipe"] is True
