"""Issue 8, finding 8: `flask backup create` writes an encrypted copy; `restore` fills an empty database."""

import shutil

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

import config as settings
from models import db
from server import backups, create_app
from tests.conftest import make_config
from tests.protected_data import PLANTED, fill, stored_rows, table_rows


def sqlite_app(path, migrate=True):
    app = create_app(make_config(f"sqlite:///{path}"))
    if migrate:
        with app.app_context():
            upgrade()
            db.engine.dispose()
    return app


def snapshot(app):
    with app.app_context():
        rows = stored_rows(), table_rows()
        db.session.remove()
        db.engine.dispose()
    return rows


def test_backup_and_restore_into_a_fresh_sqlite_database_keeps_every_table(tmp_path):
    source = sqlite_app(tmp_path / "office.sqlite")
    fill(source, source.test_client(), source.test_cli_runner())
    before = snapshot(source)
    path = tmp_path / "backups" / "office.hcbackup"
    path.parent.mkdir()
    made = source.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert made.exit_code == 0, made.output
    assert path.stat().st_mode & 0o077 == 0

    # The file alone reveals nothing: no planted name, no SQLite header, and not the data key's to open.
    content = path.read_bytes()
    assert content.startswith(b"HCBACKUP") and b"sqlite" in content[:20]
    assert PLANTED.encode() not in content and b"SQLite format 3" not in content
    with open(path, "rb") as source_file, pytest.raises(backups.BackupError, match="wrong backup key"):
        b"".join(backups.decrypted_chunks(source_file, backups.backup_cipher_key(settings.TestingConfig().DATA_KEY)))

    target = sqlite_app(tmp_path / "restored.sqlite", migrate=False)
    restored = target.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert restored.exit_code == 0, restored.output
    after_stored, after_rows = snapshot(target)
    # Every table, row for row; the audit log also says the restore happened.
    restore_rows = [r for r in after_rows["audit_event"] if "backup.restore" in r]
    assert len(restore_rows) == 1
    after_rows["audit_event"] = [r for r in after_rows["audit_event"] if r not in restore_rows]
    after_stored["audit_event"] = [r for r in after_stored["audit_event"] if "backup.restore" not in r]
    # The change sequence moves on past any device's cursor, and the output says how to resync devices.
    (seq,) = before[0]["change_counter"]
    for rows in (after_stored, after_rows):
        assert rows["change_counter"] == [(1, seq[1] + 1_000_000_000)]
        rows["change_counter"] = [seq]
    assert f"HOMECOMING_SYNC_RESYNC_BEFORE_SEQ={seq[1] + 1_000_000_000}" in restored.output
    assert (after_stored, after_rows) == before
    with target.app_context():
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.engine.dispose()

    # Never over data: the restored database is no longer empty, nor is a migrated one with a user.
    again = target.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert again.exit_code == 1 and "The database is not empty" in again.output
    # A backup never overwrites another file.
    twice = source.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert twice.exit_code == 1 and "exists already" in twice.output


def test_a_migrated_but_empty_database_takes_a_restore(tmp_path):
    source = sqlite_app(tmp_path / "a.sqlite")
    fill(source, source.test_client(), source.test_cli_runner())
    path = tmp_path / "a.hcbackup"
    before_stored, _ = snapshot(source)
    assert source.test_cli_runner().invoke(args=["backup", "create", str(path)]).exit_code == 0
    target = sqlite_app(tmp_path / "b.sqlite")
    result = target.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code == 0, result.output
    after_stored, _ = snapshot(target)
    assert after_stored["child"] == before_stored["child"]


def test_a_cut_short_or_altered_backup_is_refused(tmp_path):
    source = sqlite_app(tmp_path / "a.sqlite")
    path = tmp_path / "a.hcbackup"
    assert source.test_cli_runner().invoke(args=["backup", "create", str(path)]).exit_code == 0
    content = path.read_bytes()
    target = sqlite_app(tmp_path / "b.sqlite", migrate=False)
    runner = target.test_cli_runner()
    (tmp_path / "short").write_bytes(content[:-10])
    result = runner.invoke(args=["backup", "restore", str(tmp_path / "short")])
    assert result.exit_code == 1 and ("cut short" in result.output or "altered" in result.output), result.output
    flipped = bytearray(content)
    flipped[100] ^= 1
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    result = runner.invoke(args=["backup", "restore", str(tmp_path / "flipped")])
    assert result.exit_code == 1 and "wrong backup key, or the file was altered" in result.output


def test_backups_need_a_backup_key_that_is_not_the_data_key(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'a.sqlite'}", BACKUP_KEY=None))
    result = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "x")])
    assert result.exit_code == 1 and "No backup key: set HOMECOMING_BACKUP_KEY" in result.output
    app.config["BACKUP_KEY"] = app.config["DATA_KEY"]
    result = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "x")])
    assert result.exit_code == 1 and "must differ from every data key" in result.output


@pytest.mark.postgres
def test_postgresql_backup_and_restore_keeps_every_table(app, client, runner, tmp_path):
    assert shutil.which("pg_dump") and shutil.which("pg_restore"), "needs postgresql-client"
    fill(app, client, runner)
    path = tmp_path / "office.hcbackup"
    made = runner.invoke(args=["backup", "create", str(path)])
    assert made.exit_code == 0, made.output
    content = path.read_bytes()
    assert b"postgresql" in content[:24] and PLANTED.encode() not in content
    with app.app_context():
        before = stored_rows()
        before["audit_event"] = [r for r in before["audit_event"] if "backup.create" not in r]
        db.session.remove()
        refused = runner.invoke(args=["backup", "restore", str(path)])
        assert refused.exit_code == 1 and "The database is not empty" in refused.output
        # An empty database: the schema dropped (a new database would do the same).
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        db.engine.dispose()
    restored = runner.invoke(args=["backup", "restore", str(path)])
    assert restored.exit_code == 0, restored.output
    with app.app_context():
        after = stored_rows()
        after["audit_event"] = [r for r in after["audit_event"] if "backup.restore" not in r]
        (seq,) = before["change_counter"]
        assert after.pop("change_counter") == [(1, seq[1] + 1_000_000_000)]
        before.pop("change_counter")
        assert after == before
        db.session.remove()
