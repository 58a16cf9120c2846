"""The reference client's local store forgets what it should (issue 8, finding 4): personal and
restricted values are ciphertext at rest under a key from the device passphrase, restricted values
are truly erased once their upload is settled, and rejected ones after a set time.

The scans read every file of the store's directory as bytes, as `strings` over a seized phone would."""

import json
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.records import ENTITIES
from models.sensitivity import AGGREGATE, PERSONAL, RESTRICTED, fields_of
from sync.client import RESTRICTED_FIELDS, SyncClient, WrongPassphrase
from sync.client_cipher import PLAIN_FIELDS, SEALED_KEY
from tests.sync_devices import PASSPHRASE
from tests.test_sync_client import CHILD, FakeServer

# Fictional values, planted to be searched for.
NAMES = ("Aciro-Fictional", "Lanyero-Planted", "Ocaya-Testname")
VILLAGE = "Pabbo-Fictional-Village"
RESTRICTED_VALUES = ("Fictional-Armed-Group-Omega", "Planted-role-porter-9", "Planted restricted note 42")


@pytest.fixture
def server():
    return FakeServer()


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store_dir(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def make_client(store_dir, server, clock):
    def make(passphrase=PASSPHRASE, **kw):
        return SyncClient("http://fake", "token", str(store_dir / "device.sqlite"), passphrase=passphrase,
                          transport=server, sleep=lambda s: None, rng=random.Random(1), clock=clock, **kw)

    return make


def store_bytes(store_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(store_dir.iterdir()) if path.is_file())


def found(store_dir: Path, values) -> list:
    data = store_bytes(store_dir)
    return [v for v in values if v.encode() in data]


def sealed_blobs(store_dir: Path) -> set[str]:
    """Every sealed value the store holds now (ciphertext, base64)."""
    with sqlite3.connect(store_dir / "device.sqlite") as conn:
        blobs = set()
        for table, column in (("record", "data"), ("record", "server_data"), ("outbox", "fields"),
                              ("failed", "fields")):
            for (text,) in conn.execute(f"SELECT {column} FROM {table}"):
                sealed = json.loads(text).get(SEALED_KEY)
                if sealed:
                    blobs.add(sealed)
    return blobs


def plant(client) -> list[str]:
    ids = []
    for i, name in enumerate(NAMES):
        ids.append(client.record("child", {
            **CHILD, "given_name": name, "family_name": f"{name}-Family", "village": VILLAGE,
            "armed_group": RESTRICTED_VALUES[0], "role_in_group": RESTRICTED_VALUES[1],
            "restricted_notes": RESTRICTED_VALUES[2] if i == 0 else None}))
        client.record("assessment", {"child_id": ids[-1], "kind": "psychosocial", "assessed_on": "2026-11-20",
                                     "notes": f"Seen with {name} at home"})
    return ids


def test_the_clear_fields_are_exactly_what_the_models_mark_aggregate():
    assert set(PLAIN_FIELDS) == set(ENTITIES)
    for entity, model in ENTITIES.items():
        assert PLAIN_FIELDS[entity] == set(fields_of(model, AGGREGATE)), entity
        assert not PLAIN_FIELDS[entity] & set(fields_of(model, PERSONAL, RESTRICTED)), entity


def test_every_personal_and_restricted_field_is_ciphertext_at_rest(make_client, store_dir):
    client = make_client()
    for entity, model in ENTITIES.items():
        secret = {name: f"planted-{entity}-{name}" for name in fields_of(model, PERSONAL, RESTRICTED)}
        if not secret:
            continue
        fields = {**secret, "child_id": "00000000-0000-4000-8000-000000000001"} if entity != "child" else secret
        client.record(entity, fields)
        assert found(store_dir, secret.values()) == [], entity
    client.close()


def test_opening_the_store_needs_its_passphrase(make_client, store_dir):
    client = make_client()
    child_id = client.record("child", {**CHILD, "given_name": NAMES[0]})
    client.close()
    with pytest.raises(WrongPassphrase, match="Wrong passphrase"):
        make_client(passphrase="not-the-passphrase")
    with pytest.raises(TypeError):
        SyncClient("http://fake", "token", str(store_dir / "device.sqlite"))  # no passphrase at all
    reopened = make_client()
    assert reopened.get("child", child_id)["given_name"] == NAMES[0]
    assert reopened.pending()[0]["fields"]["given_name"] == NAMES[0]


def test_a_new_store_refuses_a_passphrase_too_short(tmp_path, server):
    with pytest.raises(ValueError, match="at least 6"):
        SyncClient("http://fake", "token", str(tmp_path / "new.sqlite"), passphrase="1234", transport=server)


def test_names_are_never_in_clear_and_restricted_values_are_gone_after_upload(make_client, server, store_dir):
    client = make_client(batch_size=2)
    seen_during_push = []

    def scan_then_answer(payload):
        # Mid-sync, with the batch frozen in the outbox and a journal possibly open.
        seen_during_push.extend(found(store_dir, NAMES + (VILLAGE,) + RESTRICTED_VALUES))
        return None

    ids = plant(client)
    assert client.get("child", ids[0])["armed_group"] == RESTRICTED_VALUES[0]  # kept until uploaded
    assert found(store_dir, NAMES + (VILLAGE,) + RESTRICTED_VALUES) == []  # before upload: ciphertext only
    before = sealed_blobs(store_dir)
    server.script = [scan_then_answer] * 3
    report = client.sync()
    assert report.applied == 6 and report.rejected == 0
    assert seen_during_push == []
    assert server.records[("child", ids[0])]["data"]["restricted_notes"] == RESTRICTED_VALUES[2]

    shown = client.get("child", ids[0])
    assert shown["given_name"] == NAMES[0]
    assert not set(RESTRICTED_FIELDS["child"]) & set(shown)
    assert [p for p in Path(store_dir).iterdir() if p.name != "device.sqlite"] == []  # no -wal, no journal
    data = store_bytes(store_dir)
    assert found(store_dir, NAMES + (VILLAGE,) + RESTRICTED_VALUES) == []
    # Truly erased, not only unreadable: none of the ciphertexts that held them is left in any file,
    # freed pages included (secure_delete, no WAL).
    assert [blob for blob in before if blob.encode() in data] == []
    client.close()
    # And with the passphrase, nothing of them either.
    reopened = make_client()
    for entity in ("child", "assessment"):
        for rec in reopened.records(entity):
            assert not set(RESTRICTED_FIELDS.get(entity, ())) & set(rec)


def test_an_old_wal_store_is_switched_to_a_rollback_journal(make_client, store_dir):
    make_client().close()
    with sqlite3.connect(store_dir / "device.sqlite") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    client = make_client()
    assert client.db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert client.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    client.record("child", {**CHILD, "given_name": NAMES[1]})
    assert sorted(p.name for p in store_dir.iterdir()) == ["device.sqlite"]


def test_rejected_restricted_values_are_erased_after_the_set_time(make_client, server, store_dir, clock):
    client = make_client()
    server.reject = {"dragon": "validation_error"}
    bad = client.record("child", {**CHILD, "sex": "dragon", "given_name": NAMES[2],
                                  "armed_group": RESTRICTED_VALUES[0], "how_left": "escaped"})
    client.sync()
    (failed,) = client.failed()
    assert failed["fields"]["armed_group"] == RESTRICTED_VALUES[0]  # kept for the user to fix and resubmit
    assert failed["restricted_erased_at"] is None
    assert found(store_dir, NAMES + RESTRICTED_VALUES) == []
    before = sealed_blobs(store_dir)

    clock.now += timedelta(days=6, hours=23)
    assert client.erase_expired() == 0
    client.sync()
    assert client.failed()[0]["fields"]["armed_group"] == RESTRICTED_VALUES[0]

    clock.now += timedelta(hours=2)  # past the default 7 days
    client.sync()  # every sync (and every open) erases what has expired
    (failed,) = client.failed()
    assert not set(RESTRICTED_FIELDS["child"]) & set(failed["fields"])
    assert failed["fields"]["given_name"] == NAMES[2] and failed["fields"]["sex"] == "dragon"  # the rest stays
    assert failed["restricted_erased_at"] == clock.now.isoformat(timespec="seconds")
    shown = client.get("child", bad)  # a rejected create: the record the user sees loses them too
    assert shown["given_name"] == NAMES[2] and not set(RESTRICTED_FIELDS["child"]) & set(shown)
    data = store_bytes(store_dir)
    assert [blob for blob in before if blob.encode() in data] == []
    assert client.erase_expired() == 0  # once only


def test_the_time_rejected_restricted_values_are_kept_is_a_setting_and_applies_at_open(make_client, server,
                                                                                      clock):
    client = make_client(keep_rejected_restricted=timedelta(hours=1))
    server.reject = {"dragon": "validation_error"}
    client.record("child", {**CHILD, "sex": "dragon", "recruitment": RESTRICTED_VALUES[1]})
    client.sync()
    client.close()
    clock.now += timedelta(hours=1, minutes=1)
    reopened = make_client(keep_rejected_restricted=timedelta(hours=1))  # the phone is switched on again
    (failed,) = reopened.failed()
    assert "recruitment" not in failed["fields"] and failed["restricted_erased_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", failed["failed_at"])
