"""``flask backup create|restore``: encrypted backups (server/backups.py, docs/operations.md)."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from models import audit, db
from server import backups


def _backup_key() -> str | None:
    key = current_app.config.get("BACKUP_KEY")
    data_keys = {current_app.config.get("DATA_KEY"), *(current_app.config.get("DATA_KEYS_OLD") or {}).values()}
    if key and key in data_keys:
        raise click.ClickException("HOMECOMING_BACKUP_KEY must differ from every data key")
    return key


@click.group(help="Encrypted backups of the whole database, and their restore into an empty one.")
def backup():
    pass


@backup.command(help="Write an encrypted backup of the database to PATH (a new file).")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def create(path):
    try:
        dialect = backups.create(db, path, _backup_key())
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    audit("backup.create", target=str(path), dialect=dialect, bytes=path.stat().st_size)
    db.session.commit()
    click.echo(f"Wrote an encrypted {dialect} backup to {path} ({path.stat().st_size} bytes).")
    click.echo("It opens only with the backup key AND the data key: keep both apart from it, never beside it.")


@backup.command(help="Restore an encrypted backup from PATH into the configured database, which must be empty.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore(path):
    try:
        dialect = backups.restore(db, path, _backup_key())
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    audit("backup.restore", target=str(path), dialect=dialect)
    db.session.commit()
    click.echo(f"Restored {path} into the {dialect} database. Start the server with the same data key "
               "(and its older versions) that the backup's data was sealed with.")
