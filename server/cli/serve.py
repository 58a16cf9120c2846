"""``flask serve``: what ``make run`` starts. Migrates, makes sure an admin exists, optionally seeds
demo data, and serves with waitress, the scheduler in-process."""

import errno
import os
import secrets

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from models import User, audit, db


def ensure_admin() -> str | None:
    """On an empty database, create ``admin`` with a one-time password and return it."""
    if db.session.execute(db.select(User.id).limit(1)).first():
        return None
    password = secrets.token_urlsafe(12)
    admin = User(username="admin", role="admin", display_name="Administrator")
    admin.set_password(password, temporary=True)
    db.session.add(admin)
    db.session.flush()
    audit("user.create", target="admin", role="admin", via="first start")
    return password


def print_key_locations(config) -> None:
    where = config.get("KEY_DIR")
    if where:
        click.secho(f"Keys are in {where} (data.key, secret.key, backup.key).", fg="yellow")
    else:
        click.secho("Keys come from the environment or HOMECOMING_*_KEY_FILE.", fg="yellow")
    click.secho("Never copy the keys with the data or a backup: with them, a copy reveals every name. "
                "Keep a copy of the keys apart, offline (docs/operations.md).", fg="yellow")


def port_problem(host: str, port: int) -> str | None:
    """One line saying why the port cannot be served on, before anything starts (not a traceback)."""
    import socket

    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (f"Port {port} on {host} is already in use (another Homecoming, or another program): stop it, "
                    f"or choose another port, e.g. make run PORT={port + 1}.")
        return f"Cannot serve on {host}:{port}: {exc.strerror}."
    finally:
        probe.close()
    return None


@click.command(help="Migrate, then serve on 127.0.0.1 (the single-process embedded setup).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo/--no-demo", default=lambda: os.environ.get("DEMO") == "1",
              help="Load fictional demo data first (default: DEMO=1 in the environment).")
@with_appcontext
def serve(host, port, demo):
    from waitress import serve as waitress_serve

    if problem := port_problem(host, port):
        raise click.ClickException(problem)
    # Whatever this process creates (the database, its -wal and -shm, exports) is the owner's alone.
    os.umask(0o077)
    upgrade()
    password = ensure_admin()
    db.session.commit()
    if password:
        click.secho(f"Created user 'admin' with one-time password: {password}", fg="yellow")
        click.echo("Sign in at /login and choose your own password (asked at once); it is not shown again.")
    if demo:
        from models import Child
        from server.cli.demo import seed

        if db.session.execute(db.select(Child.id).limit(1)).first():
            click.echo("Demo data not loaded: the database already has children.")
        else:
            passwords = seed(60)
            db.session.commit()
            click.echo("Loaded 60 fictional children.")
            for username, pw in passwords.items():
                click.secho(f"  demo login: {username} / {pw}", fg="cyan")
    app = current_app._get_current_object()
    print_key_locations(app.config)
    click.echo(f"Serving Homecoming on http://{host}:{port}  (database: {db.engine.url.render_as_string()})")
    from server.scheduler import start_in_process

    if start_in_process(app):  # the single-process setup runs the scheduler here (issue 4)
        click.echo(f"Scheduler running in this process: alert scan every {app.config['SCAN_INTERVAL_MINUTES']} "
                   f"min, notifications every {app.config['DISPATCH_INTERVAL_SECONDS']} s.")
    from server.collector import settle

    settle()
    waitress_serve(app, host=host, port=port, threads=8, ident="homecoming")
