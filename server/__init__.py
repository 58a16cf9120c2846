"""The Flask application factory. Each ``register_*`` step wires one concern."""

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import TypeDecorator, event

import models
from config import Config, load_config, private_sqlite_file
from models import attachment_storage, crypto, db, districts, search
from server import i18n

migrate = Migrate()


def create_app(config: Config | str | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    register_config(app, config)
    register_logging(app)  # first after the settings: its request id and timing cover every other hook
    register_extensions(app)
    register_blueprints(app)
    register_errors(app)  # after the API, whose own HTTP error handler this replaces
    register_security_headers(app)
    register_cli(app)
    register_proxy(app)
    return app


def register_config(app: Flask, config) -> None:
    if config is None or isinstance(config, str):
        config = load_config(config)
    config.validate()
    app.config.from_object(config)
    app.config["HOMECOMING_CONFIG"] = type(config).__name__


def register_logging(app: Flask) -> None:
    from server.logging_setup import configure_logging, register_request_log

    configure_logging(app.config["LOG_FORMAT"])
    register_request_log(app)


def register_extensions(app: Flask) -> None:
    crypto.configure(app.config["DATA_KEY"], app.config.get("DATA_KEY_VERSION", 1),
                     app.config.get("DATA_KEYS_OLD"))
    districts.configure(app.config.get("DISTRICTS"))
    search.configure(app.config["SEARCH_KEY"])
    attachment_storage.configure(app.config)
    private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])  # 0600 before the engine first opens it
    db.init_app(app)
    i18n.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True,
                     render_item=_render_type)
    from server.metrics import watch_pool

    with app.app_context():
        watch_pool(db.engine)
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
        elif db.engine.dialect.name == "postgresql":
            event.listen(db.engine, "connect", _planned_per_statement)


SQLITE_CACHE_KIB = 32 * 1024
SQLITE_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A larger page cache and a WAL copied back every 10,000 pages (about 40 MB) instead of 1,000: a
    # push's inserts into indexes on random keys (device-made ids, case codes, search digests) touch
    # more distinct pages as the tables grow, and each checkpoint wrote them all back. With room to
    # rewrite hot pages in the WAL and keep them cached, a registration batch no longer grows with the
    # tables (1.7x -> 1.1-1.2x over 20,000 mutations) and costs a fifth less (bench/sync_bench.py).
    # The cache is a ceiling per connection, filled only as pages are read.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def _planned_per_statement(dbapi_connection, _record):
    """psycopg prepares a statement once it ran five times, and PostgreSQL then reuses a generic plan
    made with the table sizes of that moment: planned while a table was small, a push's ``IN`` lists
    became sequential scans as the tables grew (a batch cost 1.6x more after 20,000 mutations). Each
    statement is planned for its own values instead (measured: no growth, no slower)."""
    dbapi_connection.prepare_threshold = None


def _render_type(type_, obj, autogen_context):
    """Render our TypeDecorators (encrypted text, UTC timestamps) as their plain storage types, so
    migrations never import application code."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        autogen_context.imports.add("import sqlalchemy as sa")
        return f"sa.{obj.impl!r}"
    return False


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def register_errors(app: Flask) -> None:
    from server.errors import register_error_handlers

    register_error_handlers(app)


def register_blueprints(app: Flask) -> None:
    from server.api import register_api
    from server.health import bp as health
    from server.metrics import bp as metrics

    app.register_blueprint(health)
    app.register_blueprint(metrics)
    register_api(app)
    from server.sync_endpoint import bp as sync_endpoint

    app.register_blueprint(sync_endpoint)
    from server.web import register_web

    register_web(app)
    from server.field_app import bp as field_app

    app.register_blueprint(field_app)
    from server.openrosa.views import register as register_openrosa

    register_openrosa(app)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        response.headers.setdefault("Cache-Control", "no-store")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def register_proxy(app: Flask) -> None:
    """Behind nginx (HOMECOMING_PROXY_HOPS=1) the client's address and scheme are in X-Forwarded-*."""
    hops = app.config["PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_cli(app: Flask) -> None:
    from server.cli import register_commands

    register_commands(app)


__all__ = ["create_app", "models"]
