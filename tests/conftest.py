"""Fixtures: one migrated database per test session (SQLite file, or TEST_DATABASE_URL), a fresh app
per test, and every table emptied after each test so tests stay isolated."""

import os

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from config import TestingConfig
from models import db
from server import create_app

STRICT = os.environ.get("HOMECOMING_STRICT") == "1"


def need(condition: bool, how_to_get_it: str) -> None:
    """Skip when the machine lacks something; under CI (HOMECOMING_STRICT=1) fail instead."""
    if not condition:
        if STRICT:
            pytest.fail(f"required under CI: {how_to_get_it}")
        pytest.skip(how_to_get_it)


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def pytest_collection_modifyitems(config, items):
    # PostgreSQL-only tests are not applicable to the SQLite pass; `make test` runs them in its
    # PostgreSQL pass when TEST_DATABASE_URL is set.
    if is_postgres(os.environ.get("TEST_DATABASE_URL", "")):
        return
    kept = [item for item in items if "postgres" not in item.keywords]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if "postgres" in i.keywords])
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"


def make_config(database_url, **overrides):
    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="session")
def migrated(database_url):
    """Build the schema once, through the real migrations."""
    app = create_app(make_config(database_url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return database_url


def empty_tables():
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        for table in tables:
            if table.name == "change_counter":
                conn.execute(table.update().values(value=0))
            else:
                conn.execute(table.delete())


@pytest.fixture
def app(migrated):
    app = create_app(make_config(migrated))
    yield app
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    """An app context for tests that call domain functions directly."""
    with app.app_context():
        yield app
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session", autouse=True)
def key_dir_for_tests(tmp_path_factory):
    """Development-config runs inside the suite (and the servers it starts) make their keys here, never
    in the tester's own ~/.config/homecoming."""
    path = tmp_path_factory.mktemp("keys")
    path.chmod(0o700)
    previous = os.environ.get("HOMECOMING_KEY_DIR")
    os.environ["HOMECOMING_KEY_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("HOMECOMING_KEY_DIR", None)
    else:
        os.environ["HOMECOMING_KEY_DIR"] = previous
