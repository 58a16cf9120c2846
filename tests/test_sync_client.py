"""The reference client's own rules, against a scripted in-memory server that speaks the protocol 1
wire format: retries and backoff, failed mutations that do not block the queue, pulls that never
overwrite unsent edits, wipe on revoke, restricted fields dropped after upload, resync."""

import gzip
import json
import random
import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from models import Child
from models.records import ENTITIES
from models.sensitivity import RESTRICTED, fields_of
from sync.client import ENTITIES as CLIENT_ENTITIES
from sync.client import (
    RESTRICTED_FIELDS,
    DeviceRevoked,
    Offline,
    ProtocolError,
    SyncClient,
    Unauthorized,
    case_code_for,
)
from tests.sync_devices import PASSPHRASE


def reply(status, body=None, headers=None, gzipped=True):
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if gzipped and raw:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    return status, headers, raw


class FakeServer:
    """Just enough of the server to exercise the client: idempotent by mutation and batch id,
    versions, a conflict when a field was changed by someone else since the base, pages of changes."""

    def __init__(self):
        self.records = {}  # (entity, id) -> {"version", "data", "changed": {version: fields}}
        self.seen_mutations = {}
        self.seen_batches = {}
        self.log = []  # every change, in order: (entity, id) for the pull
        self.calls = []
        self.script = []  # queued faults: callables returning a reply or raising OSError
        self.reject = {}  # field value -> code, to make the server refuse a mutation
        self.removed = set()  # records that left the device's scope: pulled as "remove"

    def __call__(self, method, url, headers, body):
        parsed = urlparse(url)
        payload = json.loads(gzip.decompress(body)) if body else None
        if body:
            assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/json"
        assert headers["Accept-Encoding"] == "gzip"
        self.calls.append((method, parsed.path, payload, parse_qs(parsed.query)))
        if self.script:
            fault = self.script.pop(0)
            answer = fault(payload) if fault is not None else None
            if answer is not None:  # a fault may also let the call through
                return answer
        if parsed.path == "/api/v1/sync/push":
            return self.push(payload)
        return self.pull({k: v[0] for k, v in parse_qs(parsed.query).items()})

    def push(self, payload):
        if payload["batch_id"] in self.seen_batches:
            return reply(200, self.seen_batches[payload["batch_id"]])
        results = [self.apply(m) for m in payload["mutations"]]
        answer = {"batch_id": payload["batch_id"], "server_time": "2026-11-27T10:00:00+00:00", "results": results}
        self.seen_batches[payload["batch_id"]] = answer
        return reply(200, answer)

    def apply(self, m):
        mid = m["mutation_id"]
        if mid in self.seen_mutations:
            return {**self.seen_mutations[mid], "status": "duplicate"}
        for value, code in self.reject.items():
            if value in m["fields"].values():
                result = {"mutation_id": mid, "status": "rejected", "code": code,
                          "errors": {"sex": ["Must be one of: female, male, other, unknown."]}}
                self.seen_mutations[mid] = result
                return result
        key = (m["entity"], m["id"])
        if m["op"] == "create":
            self.records[key] = {"version": 1, "data": {**m["fields"], "id": m["id"]}, "changed": {}}
            result = {"mutation_id": mid, "status": "applied", "version": 1}
        else:
            self.server_edit(key, {}, count=False)
            rec = self.records[key]
            others = {f for v, fs in rec["changed"].items() if v > m["base_version"] for f in fs}
            clash = sorted(f for f in m["fields"] if f in others and rec["data"].get(f) != m["fields"][f])
            rec["data"].update({k: v for k, v in m["fields"].items() if k not in clash})
            rec["version"] += 1
            rec["changed"][rec["version"]] = set(m["fields"]) - set(clash)
            result = {"mutation_id": mid, "status": "conflict" if clash else "applied", "version": rec["version"]}
            if clash:
                result.update(conflict_id=str(uuid.uuid4()), conflicting_fields=clash)
        self.log.append(key)
        self.seen_mutations[mid] = result
        return result

    def server_edit(self, key, fields, count=True):
        """Someone on the web changes a record."""
        if not count:
            return
        rec = self.records[key]
        rec["data"].update(fields)
        rec["version"] += 1
        rec["changed"][rec["version"]] = set(fields)
        self.log.append(key)

    def pull(self, query):
        start = int(query.get("cursor", 0))
        limit = int(query["limit"])
        # Latest change per record, in log order (as a server's change sequence would give).
        last = {}
        for pos, key in enumerate(self.log):
            last[key] = pos
        positions = sorted(pos for pos in last.values() if pos >= start)[:limit]
        changes = []
        for pos in positions:
            entity, rid = self.log[pos]
            if (entity, rid) in self.removed:
                changes.append({"entity": entity, "id": rid, "version": 0, "op": "remove"})
                continue
            rec = self.records[(entity, rid)]
            data = {k: v for k, v in rec["data"].items() if k not in RESTRICTED_FIELDS.get(entity, ())}
            changes.append({"entity": entity, "id": rid, "version": rec["version"], "op": "upsert", "data": data})
        cursor = (positions[-1] + 1) if positions else start
        has_more = any(pos >= cursor for pos in last.values())
        return reply(200, {"changes": changes, "cursor": str(cursor), "has_more": has_more,
                           "server_time": "2026-11-27T10:00:00+00:00"})


def network_down(_payload):
    raise OSError("connection refused")


def status(code, body=None, headers=None):
    return lambda _payload: reply(code, body, headers)


@pytest.fixture
def server():
    return FakeServer()


@pytest.fixture
def make_client(tmp_path, server):
    sleeps = []

    def make(name="device", **kw):
        client = SyncClient("http://fake", "token", str(tmp_path / f"{name}.sqlite"), passphrase=PASSPHRASE,
                            transport=server,
                            sleep=sleeps.append, rng=random.Random(1), **kw)
        client.sleeps = sleeps
        return client

    return make


CHILD = {"sex": "female", "given_name": "Fictional", "family_name": "Tester", "district": "Kitgum"}


def test_case_code_is_known_offline_and_matches_the_server():
    from models.children import case_code_for as server_case_code

    for _ in range(200):
        some_id = uuid.uuid4()
        assert case_code_for(str(some_id)) == server_case_code(some_id)
    assert case_code_for("00000000-0000-4000-8000-000000000000") == "2222-2222"


def test_restricted_list_mirrors_the_models():
    assert set(CLIENT_ENTITIES) == set(ENTITIES)
    assert list(RESTRICTED_FIELDS["child"]) == fields_of(Child, RESTRICTED)
    assert RESTRICTED_FIELDS == {entity: tuple(fields_of(model, RESTRICTED)) for entity, model in ENTITIES.items()
                                 if fields_of(model, RESTRICTED)}


def test_offline_edits_are_queued_in_order_with_only_changed_fields(make_client, server):
    client = make_client()
    child_id = client.record("child", CHILD)
    uuid.UUID(child_id)
    assert client.get("child", child_id)["case_code"] == case_code_for(child_id)  # shown before any sync
    consent = client.record("consent", {"child_id": child_id, "purpose": "services", "given_by": "caregiver",
                                        "given_on": "2026-11-20"})
    client.record("child", {**CHILD, "risk_level": "high"}, id=child_id)  # merged into the unsent create
    assert [(m["entity"], m["op"]) for m in client.pending()] == [("child", "create"), ("consent", "create")]
    assert client.pending()[0]["fields"]["risk_level"] == "high"
    assert server.calls == []  # nothing leaves the device before sync()

    report = client.sync()
    assert (report.pushed, report.applied, client.pending()) == (2, 2, [])
    assert client.version("child", child_id) == 1 and client.version("consent", consent) == 1

    client.record("child", {**CHILD, "risk_level": "high", "district": "Pader"}, id=child_id)
    (update,) = client.pending()
    assert update["op"] == "update" and update["fields"] == {"district": "Pader"} and update["base_version"] == 1


def test_network_errors_and_503_are_retried_with_backoff_honouring_retry_after(make_client, server):
    client = make_client()
    client.record("child", CHILD)
    unavailable = {"error": {"code": "unavailable", "message": "The database cannot be reached.", "details": {}}}
    server.script = [network_down, status(503, unavailable, {"Retry-After": "7"}), status(502)]
    report = client.sync()
    assert report.applied == 1 and report.retries == 3
    assert len(client.sleeps) == 3
    assert client.sleeps[1] >= 7  # Retry-After is a floor
    assert client.sleeps[0] <= 0.5 and client.sleeps[2] <= 2.0  # full jitter under the exponential bound
    # All three attempts carried the same batch: a retry replays, it never makes a new batch.
    batch_ids = {c[2]["batch_id"] for c in server.calls if c[1].endswith("/push")}
    assert len(batch_ids) == 1


def test_gives_up_after_max_attempts_and_the_next_sync_resends_the_same_batch(make_client, server):
    client = make_client(max_attempts=3)
    client.record("child", CHILD)
    server.script = [network_down] * 3
    with pytest.raises(Offline):
        client.sync()
    (queued,) = client.pending()
    assert queued["batch_id"] is not None
    client.record("child", {"sex": "male"})  # made while offline: goes in a later batch
    client.sync()
    pushes = [c[2] for c in server.calls if c[1].endswith("/push")]
    assert [p["batch_id"] for p in pushes[:4]] == [queued["batch_id"]] * 4
    assert len(pushes[3]["mutations"]) == 1 and pushes[4]["batch_id"] != queued["batch_id"]
    assert client.pending() == [] and len(server.records) == 2


def test_a_replayed_batch_after_a_lost_answer_applies_nothing_twice(make_client, server):
    client = make_client()
    client.record("child", CHILD)

    def commit_then_drop(payload):
        server.push(payload)  # the server committed …
        raise OSError("connection reset")  # … but the answer never arrived

    server.script = [commit_then_drop]
    report = client.sync()
    assert report.applied == 1 and len(server.log) == 1 and client.pending() == []


def test_a_rejected_mutation_is_not_retried_and_does_not_block_the_queue(make_client, server):
    client = make_client(batch_size=2)
    server.reject = {"dragon": "validation_error"}
    good1 = client.record("child", CHILD)
    bad = client.record("child", {**CHILD, "sex": "dragon"})
    good2 = client.record("child", {**CHILD, "sex": "male"})
    report = client.sync()
    assert (report.applied, report.rejected) == (2, 1)
    assert len([c for c in server.calls if c[1].endswith("/push")]) == 2  # no retry of the rejection
    (failed,) = client.failed()
    assert failed["record_id"] == bad and failed["code"] == "validation_error"
    assert failed["errors"] == {"sex": ["Must be one of: female, male, other, unknown."]}
    assert client.get("child", bad)["sex"] == "dragon"  # still visible to the user, to fix
    assert {good1, good2} <= {k[1] for k in server.records}

    # The next sync does not send it again; the user fixes it and it goes under a new mutation id.
    client.sync()
    assert len([c for c in server.calls if c[1].endswith("/push")]) == 2
    new_id = client.resubmit(failed["mutation_id"], {"sex": "female"})
    assert new_id != failed["mutation_id"]
    client.sync()
    assert client.failed() == [] and server.records[("child", bad)]["data"]["sex"] == "female"


def test_a_refused_envelope_is_split_until_the_bad_mutation_is_alone(make_client, server):
    client = make_client()
    ids = [client.record("child", {**CHILD, "given_name": f"Fictional{i}"}) for i in range(4)]
    bad_mid = client.pending()[2]["mutation_id"]
    refused = {"error": {"code": "validation_error", "message": "Some fields are not valid.",
                         "details": {"fields": {"mutations": {"0": {"op": ["Not a valid choice."]}}}}}}

    def refuse_if_bad(payload):
        if payload and any(m["mutation_id"] == bad_mid for m in payload["mutations"]):
            return reply(422, refused)
        return None

    server.script = [refuse_if_bad] * 20
    report = client.sync()
    assert report.applied == 3 and [f["mutation_id"] for f in client.failed()] == [bad_mid]
    assert {k[1] for k in server.records} == set(ids) - {ids[2]}
    # A binary search: [0-3] refused, [0-1] ok, [2-3] refused, [2] refused alone, [3] ok; then the pull.
    assert [len(c[2]["mutations"]) for c in server.calls if c[1].endswith("/push")] == [4, 2, 2, 1, 1]


def test_401_stops_without_retrying(make_client, server):
    client = make_client()
    client.record("child", CHILD)
    server.script = [status(401, {"error": {"code": "unauthorized", "message": "The token is not valid.",
                                            "details": {}}})]
    with pytest.raises(Unauthorized):
        client.sync()
    assert len(server.calls) == 1 and len(client.pending()) == 1


def test_a_pulled_record_never_overwrites_an_unsent_edit(make_client, server):
    client = make_client()
    child_id = client.record("child", CHILD)
    client.sync()
    client.record("child", {"risk_level": "high"}, id=child_id)  # offline, unsent
    server.server_edit(("child", child_id), {"risk_level": "low", "district": "Gulu"})
    client.pull()
    shown = client.get("child", child_id)
    assert shown["risk_level"] == "high"  # the device's unsent edit stays on top …
    assert shown["district"] == "Gulu"  # … of everything else the server changed
    assert client.version("child", child_id) == 2
    (update,) = client.pending()
    assert update["base_version"] == 1  # the base stays what the user saw when editing

    report = client.sync()  # the server sees both changed risk_level since 1: a conflict, kept
    assert report.conflicts == 1
    assert client.conflicts()[0]["fields"] == ["risk_level"]
    assert client.get("child", child_id)["risk_level"] == "low"  # the server's value until resolved


def test_cursor_is_stored_only_with_its_page(make_client, server):
    writer = make_client("writer")
    for i in range(5):
        writer.record("child", {**CHILD, "given_name": f"Fictional{i}"})
    writer.push()
    reader = make_client("reader", page_size=2)
    server.script = [None, network_down, network_down]  # page 1 arrives, page 2 does not
    reader.max_attempts = 2
    with pytest.raises(Offline):
        reader.pull()
    assert reader.cursor == "2" and len(reader.records("child")) == 2
    report = reader.pull()
    assert report.pulled == 3 and len(reader.records("child")) == 5


def test_restricted_fields_are_dropped_once_uploaded(make_client, server, tmp_path):
    client = make_client()
    secret = "Fictional-Group-Alpha-7"
    child_id = client.record("child", {**CHILD, "armed_group": secret, "how_left": "escaped"})
    assert client.get("child", child_id)["armed_group"] == secret  # collected offline, kept until sent
    client.sync()
    assert server.records[("child", child_id)]["data"]["armed_group"] == secret  # the server has it
    shown = client.get("child", child_id)
    assert "armed_group" not in shown and "how_left" not in shown and shown["given_name"] == "Fictional"
    client.close()
    # Not in any file of the store either, not even in freed pages; the name is ciphertext at rest.
    data = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert secret.encode() not in data and b"Fictional" not in data and b"Kitgum" in data


def test_revoked_with_wipe_deletes_the_store(make_client, server, tmp_path):
    client = make_client()
    client.record("child", CHILD)
    server.script = [status(403, {"error": {"code": "device_revoked", "message": "This device was revoked.",
                                            "details": {}}, "wipe": True})]
    with pytest.raises(DeviceRevoked) as raised:
        client.sync()
    assert raised.value.wipe is True
    assert not any(p.name.startswith("device.sqlite") for p in tmp_path.iterdir())


def test_revoked_without_wipe_keeps_the_store(make_client, server, tmp_path):
    client = make_client()
    client.record("child", CHILD)
    server.script = [status(403, {"error": {"code": "device_revoked", "message": "This device was revoked.",
                                            "details": {}}, "wipe": False})]
    with pytest.raises(DeviceRevoked) as raised:
        client.sync()
    assert raised.value.wipe is False and len(client.pending()) == 1


def test_resync_required_starts_again_from_empty_and_drops_what_is_gone(make_client, server):
    client = make_client()
    kept = client.record("child", CHILD)
    gone = client.record("child", {**CHILD, "sex": "male"})
    client.sync()
    del server.records[("child", gone)]
    server.log = [k for k in server.log if k[1] != gone]
    unsent = client.record("child", {**CHILD, "given_name": "Fictional-offline"})
    resync = {"error": {"code": "resync_required", "message": "Start again from an empty cursor.", "details": {}}}
    server.script = [None, status(409, resync)]  # the push goes through, the first pull is refused
    report = client.sync()
    assert report.resynced
    pulls = [c[3] for c in server.calls if c[1].endswith("/pull")]
    assert "cursor" in pulls[-2] and "cursor" not in pulls[-1]
    assert {r["id"] for r in client.records("child")} == {kept, unsent}


def test_an_edit_queued_behind_an_unanswered_batch_does_not_conflict_with_itself(make_client, server):
    client = make_client(max_attempts=1)
    child_id = client.record("child", CHILD)
    client.sync()
    client.record("child", {"risk_level": "high"}, id=child_id)
    server.script = [network_down]
    with pytest.raises(Offline):
        client.sync()  # that update is now frozen in a batch
    client.record("child", {"risk_level": "medium"}, id=child_id)  # a second edit, separate mutation
    report = client.sync()
    assert report.conflicts == 0 and report.applied == 2
    assert server.records[("child", child_id)]["data"]["risk_level"] == "medium"
    assert client.get("child", child_id)["risk_level"] == "medium"


def test_remove_deletes_a_record_unless_an_unsent_edit_waits_for_it(make_client, server):
    client = make_client()
    quiet = client.record("child", CHILD)
    edited = client.record("child", {**CHILD, "sex": "male"})
    client.sync()
    client.record("child", {"risk_level": "high"}, id=edited)  # unsent
    for key in (("child", quiet), ("child", edited)):
        server.removed.add(key)
        server.log.append(key)  # reassigned to another caseworker
    report = client.pull()
    assert report.removed == 2
    assert client.get("child", quiet) is None
    assert client.get("child", edited)["risk_level"] == "high"  # kept until the push answers


def test_invalid_cursor_starts_again_from_empty(make_client, server):
    client = make_client()
    client.record("child", CHILD)
    client.sync()
    invalid = {"error": {"code": "invalid_cursor", "message": "The cursor is not one this server gave this "
                         "device.", "details": {}}}
    server.script = [status(400, invalid)]
    report = client.pull()
    assert report.resynced and report.pulled == 1 and len(client.records("child")) == 1


def test_a_batch_id_taken_by_another_device_is_sent_again_under_a_new_one(make_client, server):
    client = make_client()
    client.record("child", CHILD)
    taken = {"error": {"code": "id_conflict", "message": "This batch_id was already used by another device.",
                       "details": {}}}
    server.script = [status(409, taken)]
    report = client.sync()
    first, second = [c[2]["batch_id"] for c in server.calls if c[1].endswith("/push")]
    assert first != second and report.applied == 1 and client.failed() == []


def test_an_unknown_protocol_stops_the_push_and_keeps_the_outbox(make_client, server):
    client = make_client()
    for i in range(3):
        client.record("child", {**CHILD, "given_name": f"Fictional{i}"})
    unknown = {"error": {"code": "validation_error", "message": "This server speaks sync protocol 2.",
                         "details": {"fields": {"protocol": ["Must be 2."]}, "supported": [2]}}}
    server.script = [status(422, unknown)]
    with pytest.raises(ProtocolError):
        client.sync()
    assert len(client.pending()) == 3 and client.failed() == [] and len(server.calls) == 1
