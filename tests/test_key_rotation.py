"""Issue 8, finding 9: `flask keys rotate` re-encrypts every stored value under the current data key."""

import base64
import secrets

import config as settings
from models import crypto, db
from models.changes import current_seq
from models.key_rotation import count_by_version, encrypted_columns
from server import create_app
from tests.conftest import make_config
from tests.protected_data import PLANTED, fill, stored_rows, table_rows


def rotated_app(database_url):
    """The same database, now with a new current key (version 2) and the first one kept as old."""
    new_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return create_app(make_config(database_url, DATA_KEY=new_key, DATA_KEY_VERSION=2,
                                  DATA_KEYS_OLD={1: settings.TestingConfig().DATA_KEY}))


def test_every_encrypted_column_is_found_including_history_conflicts_and_the_mutation_log():
    names = {target.name for target in encrypted_columns()}
    assert {"child.given_name", "child.armed_group", "record_history.values", "conflict.device_values",
            "mutation_log.payload", "followup.notes"} <= names


def test_rotate_from_k1_to_k2_in_a_killed_run_then_again(app, client, runner, migrated):
    fill(app, client, runner)
    with app.app_context():
        before = table_rows(skip={"audit_event"})
        seq_before = current_seq(db.session)
        counts = count_by_version(db.session)
        assert set(counts) == {"k1"} and counts["k1"] > 50
        db.session.remove()

    app2 = rotated_app(migrated)
    runner2 = app2.test_cli_runner()
    # Values sealed under k1 stay readable before any rotation: the app keeps serving.
    with app2.app_context():
        assert table_rows(skip={"audit_event"}) == before
        db.session.remove()
    # A run stopped part-way (as if killed): some values moved, the rest still under k1.
    partial = runner2.invoke(args=["keys", "rotate", "--batch-size", "7", "--limit", "20"])
    assert partial.exit_code == 0, partial.output
    assert "remain" in partial.output
    with app2.app_context():
        halfway = count_by_version(db.session)
        assert halfway["k2"] == 20 and halfway["k1"] == counts["k1"] - 20
        db.session.remove()
    # Running it again continues; nothing is left under k1.
    resumed = runner2.invoke(args=["keys", "rotate", "--batch-size", "7"])
    assert resumed.exit_code == 0, resumed.output
    assert "None is left under an older key" in resumed.output
    status = runner2.invoke(args=["keys", "status"])
    assert f"k2: {counts['k1']} values  (current)" in status.output and "k1:" not in status.output
    with app2.app_context():
        assert count_by_version(db.session) == {"k2": counts["k1"]}
        # Every value reads back the same, and no record version, sequence number or updated_at moved:
        # a device does not pull everything again.
        assert table_rows(skip={"audit_event"}) == before
        assert current_seq(db.session) == seq_before
        stored = stored_rows()
        sealed = [value for rows in stored.values() for row in rows for value in row
                  if isinstance(value, str) and crypto.version_of(value)]
        assert sealed and all(value.startswith("k2:") for value in sealed)
        assert not any(PLANTED in value for value in sealed)
        db.session.remove()
    # Without the old key, nothing needs it any more.
    app3 = create_app(make_config(migrated, DATA_KEY=app2.config["DATA_KEY"], DATA_KEY_VERSION=2))
    with app3.app_context():
        assert table_rows(skip={"audit_event"}) == before
        db.session.remove()
    again = runner2.invoke(args=["keys", "rotate"])
    assert "already under data key version 2" in again.output


def test_a_value_under_a_key_no_longer_configured_is_named(app, client, runner, migrated):
    fill(app, client, runner)
    with app.app_context():
        db.session.remove()
    new_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    forgetful = create_app(make_config(migrated, DATA_KEY=new_key, DATA_KEY_VERSION=2))
    result = forgetful.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert "sealed with data key version 1, which is not configured" in result.output
