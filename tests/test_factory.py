import pytest

from config import ProductionConfig, load_config
from server import create_app


def test_testing_config_builds_an_app(app):
    assert app.config["TESTING"] is True
    assert app.config["HOMECOMING_CONFIG"] == "TestingConfig"


def test_production_refuses_to_start_without_keys(monkeypatch):
    monkeypatch.delenv("HOMECOMING_SECRET_KEY", raising=False)
    monkeypatch.delenv("HOMECOMING_DATA_KEY", raising=False)
    with pytest.raises(ValueError, match="HOMECOMING_SECRET_KEY and HOMECOMING_DATA_KEY"):
        create_app(ProductionConfig())


def test_production_refuses_to_start_without_a_search_key(monkeypatch):
    monkeypatch.setenv("HOMECOMING_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HOMECOMING_DATA_KEY", "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA=")
    monkeypatch.delenv("HOMECOMING_SEARCH_KEY", raising=False)
    with pytest.raises(ValueError, match="without HOMECOMING_SEARCH_KEY"):
        create_app(ProductionConfig())


def test_production_starts_with_keys(monkeypatch):
    monkeypatch.setenv("HOMECOMING_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HOMECOMING_DATA_KEY", "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA=")
    monkeypatch.setenv("HOMECOMING_SEARCH_KEY", "dGVzdC1zZWFyY2gta2V5LXRlc3Qtc2VhcmNoLWtleTA=")
    monkeypatch.setenv("HOMECOMING_DATABASE_URL", "sqlite://")
    app = create_app("production")
    assert app.config["SECRET_KEY"] == "s" * 40
    # Behind a TLS proxy BASE_URL may be left at its default; the session cookie is Secure anyway.
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_config_is_read_when_built_not_at_import(monkeypatch):
    monkeypatch.setenv("HOMECOMING_API_TOKEN_MINUTES", "5")
    assert load_config("testing").API_TOKEN_MINUTES == 5


def test_bad_config_values_say_what_is_wrong(monkeypatch):
    monkeypatch.setenv("HOMECOMING_API_TOKEN_MINUTES", "soon")
    with pytest.raises(ValueError, match="HOMECOMING_API_TOKEN_MINUTES must be a whole number"):
        load_config("testing")
    with pytest.raises(ValueError, match="HOMECOMING_CONFIG must be one of"):
        load_config("staging")


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database():
    from tests.conftest import make_config

    app = create_app(make_config("sqlite:////nonexistent-dir/x.sqlite"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"


def test_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_sqlite_connections_get_the_write_path_settings(tmp_path):
    """WAL, a 32 MiB page cache and checkpoints every 10,000 pages (server/__init__.py, issue 10), on a
    SQLite file of its own whichever database this run uses."""
    from config import TestingConfig
    from models import db

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'pragmas.sqlite'}"
    with create_app(config).app_context():
        with db.engine.connect() as connection:
            def pragma(name):
                return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert (pragma("journal_mode"), pragma("synchronous")) == ("wal", 1)
            assert (pragma("cache_size"), pragma("wal_autocheckpoint")) == (-32 * 1024, 10_000)
        db.engine.dispose()  # once the connection is back in the pool, so it is closed too
