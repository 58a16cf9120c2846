"""Issue 8, finding 1: keys live away from the data, files holding keys or data are the owner's alone."""

import base64
import os
import secrets
import stat

import pytest
from sqlalchemy import text

import config as settings
from config import DevelopmentConfig, ProductionConfig
from models import db
from server import create_app


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def fresh_clone(tmp_path, monkeypatch):
    """A fresh clone's development setup: an empty instance/ folder and an empty config home."""
    instance = tmp_path / "clone" / "instance"
    monkeypatch.setattr(settings, "INSTANCE_DIR", instance)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("KEY_DIR", "SECRET_KEY", "DATA_KEY", "BACKUP_KEY", "DATABASE_URL", "DATA_KEY_FILE",
                 "SECRET_KEY_FILE", "BACKUP_KEY_FILE", "DATA_KEY_VERSION", "DATA_KEY_OLD"):
        monkeypatch.delenv(f"HOMECOMING_{name}", raising=False)
    umask = os.umask(0o022)
    os.umask(umask)
    yield tmp_path
    os.umask(umask)  # `flask serve` tightens the process's umask; the rest of the suite keeps its own


def test_make_run_config_puts_no_key_in_the_data_folder(fresh_clone):
    config = DevelopmentConfig()
    instance = settings.INSTANCE_DIR
    key_dir = fresh_clone / "xdg" / "homecoming"
    assert config.KEY_DIR == key_dir.resolve()
    assert sorted(p.name for p in key_dir.iterdir()) == ["backup.key", "data.key", "search.key", "secret.key"]
    assert mode(key_dir) == 0o700 and all(mode(p) == 0o600 for p in key_dir.iterdir())
    assert config.DATA_KEY == (key_dir / "data.key").read_text().strip()
    app = create_app(config)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('fictional')"))
        files = sorted(p.name for p in instance.iterdir())
        assert files[0] == "homecoming.sqlite" and not [f for f in files if f.endswith(".key")]
        # The database and the WAL and shared-memory files SQLite makes beside it: the owner's alone.
        assert all(mode(instance / f) == 0o600 for f in files), {f: oct(mode(instance / f)) for f in files}
        db.engine.dispose()
    # A second start reads the same keys.
    assert DevelopmentConfig().DATA_KEY == config.DATA_KEY


def test_a_key_left_in_instance_by_an_older_version_is_moved_out(fresh_clone):
    settings.INSTANCE_DIR.mkdir(parents=True)
    legacy = new_key()
    (settings.INSTANCE_DIR / "data.key").write_text(legacy)
    config = DevelopmentConfig()
    assert config.DATA_KEY == legacy
    assert not (settings.INSTANCE_DIR / "data.key").exists()


def test_a_key_dir_in_the_data_folder_is_refused(fresh_clone, monkeypatch):
    monkeypatch.setenv("HOMECOMING_KEY_DIR", str(settings.INSTANCE_DIR / "keys"))
    with pytest.raises(ValueError, match="HOMECOMING_KEY_DIR .* database's folder"):
        DevelopmentConfig()
    monkeypatch.setenv("HOMECOMING_KEY_DIR", str(settings.INSTANCE_DIR))
    with pytest.raises(ValueError, match="database's folder"):
        DevelopmentConfig()


def test_an_existing_database_file_open_to_others_is_tightened(tmp_path):
    from tests.conftest import make_config

    path = tmp_path / "old.sqlite"
    path.write_bytes(b"")
    path.chmod(0o644)
    create_app(make_config(f"sqlite:///{path}"))
    assert mode(path) == 0o600


@pytest.fixture
def production(fresh_clone, monkeypatch):
    data_dir = fresh_clone / "data"
    data_dir.mkdir()
    monkeypatch.setenv("HOMECOMING_DATABASE_URL", f"sqlite:///{data_dir / 'homecoming.sqlite'}")
    monkeypatch.setenv("HOMECOMING_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HOMECOMING_SEARCH_KEY", "dGVzdC1zZWFyY2gta2V5LXRlc3Qtc2VhcmNoLWtleTA=")
    return data_dir


def key_file(path, key, file_mode=0o600):
    path.write_text(key + "\n")
    path.chmod(file_mode)
    return path


def test_production_reads_the_data_key_from_a_private_file(production, fresh_clone, monkeypatch):
    key = new_key()
    monkeypatch.setenv("HOMECOMING_DATA_KEY_FILE", str(key_file(fresh_clone / "data.key", key)))
    config = ProductionConfig()
    assert config.DATA_KEY == key and config.DATA_KEY_VERSION == 1
    create_app(config)


def test_production_refuses_a_key_file_others_can_read(production, fresh_clone, monkeypatch):
    monkeypatch.setenv("HOMECOMING_DATA_KEY_FILE", str(key_file(fresh_clone / "data.key", new_key(), 0o644)))
    with pytest.raises(ValueError, match="HOMECOMING_DATA_KEY_FILE: .* readable by group or others"):
        ProductionConfig()
    monkeypatch.delenv("HOMECOMING_DATA_KEY_FILE")
    monkeypatch.setenv("HOMECOMING_DATA_KEY", new_key())
    monkeypatch.delenv("HOMECOMING_SECRET_KEY")
    monkeypatch.setenv("HOMECOMING_SECRET_KEY_FILE", str(key_file(fresh_clone / "secret.key", "s" * 40, 0o640)))
    with pytest.raises(ValueError, match="HOMECOMING_SECRET_KEY_FILE: .* readable by group"):
        ProductionConfig()


def test_production_refuses_a_key_file_in_the_database_folder(production, monkeypatch):
    monkeypatch.setenv("HOMECOMING_DATA_KEY_FILE", str(key_file(production / "data.key", new_key())))
    with pytest.raises(ValueError, match="HOMECOMING_DATA_KEY_FILE: .* database's folder"):
        ProductionConfig()


def test_production_refuses_a_backup_key_equal_to_the_data_key(production, monkeypatch):
    key = new_key()
    monkeypatch.setenv("HOMECOMING_DATA_KEY", key)
    monkeypatch.setenv("HOMECOMING_BACKUP_KEY", key)
    with pytest.raises(ValueError, match="HOMECOMING_BACKUP_KEY must differ from every data key"):
        create_app(ProductionConfig())


def test_a_key_file_holds_a_versioned_ring(production, fresh_clone, monkeypatch):
    old, current = new_key(), new_key()
    path = key_file(fresh_clone / "data.key", f"# rotated on a fictional day\n1:{old}\n2:{current}")
    monkeypatch.setenv("HOMECOMING_DATA_KEY_FILE", str(path))
    config = ProductionConfig()
    assert (config.DATA_KEY, config.DATA_KEY_VERSION, config.DATA_KEYS_OLD) == (current, 2, {1: old})
    monkeypatch.setenv("HOMECOMING_DATA_KEY_VERSION", "3")
    with pytest.raises(ValueError, match="HOMECOMING_DATA_KEY_VERSION is 3 but"):
        ProductionConfig()


def test_the_environment_holds_a_versioned_ring(production, monkeypatch):
    old, current = new_key(), new_key()
    monkeypatch.setenv("HOMECOMING_DATA_KEY", current)
    monkeypatch.setenv("HOMECOMING_DATA_KEY_VERSION", "2")
    monkeypatch.setenv("HOMECOMING_DATA_KEY_OLD", f"1:{old}")
    config = ProductionConfig()
    assert (config.DATA_KEY, config.DATA_KEY_VERSION, config.DATA_KEYS_OLD) == (current, 2, {1: old})
    monkeypatch.setenv("HOMECOMING_DATA_KEY_OLD", old)
    with pytest.raises(ValueError, match="HOMECOMING_DATA_KEY_OLD: write each older key as VERSION:KEY"):
        ProductionConfig()


def test_flask_serve_says_where_the_keys_are_and_makes_private_files(fresh_clone, monkeypatch):
    import waitress

    import server.scheduler

    monkeypatch.setattr(waitress, "serve", lambda *args, **kwargs: None)
    monkeypatch.setattr(server.scheduler, "start_in_process", lambda app: None)
    app = create_app(DevelopmentConfig())
    result = app.test_cli_runner().invoke(args=["serve"])
    assert result.exit_code == 0, result.output
    key_dir = (fresh_clone / "xdg" / "homecoming").resolve()
    assert f"Keys are in {key_dir}" in result.output
    assert "Never copy the keys with the data or a backup" in result.output
    instance = settings.INSTANCE_DIR
    assert not list(instance.glob("*.key"))
    assert {f.name: mode(f) for f in instance.iterdir()} == {f.name: 0o600 for f in instance.iterdir()}
    with app.app_context():
        db.engine.dispose()
