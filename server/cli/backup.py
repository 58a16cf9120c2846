"""``flask backup create|restore``: encrypted backups (server/backups.py, docs/operations.md)."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from models import audit, db
from models.changes import ChangeCounter
from server import backups

# How far a restore moves the change sequence on: more than a field office writes between two backups.
RESTORE_SEQ_GAP = 1_000_000_000


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
    # Devices may have pulled changes made after the backup: their cursors are ahead of the restored
    # counter. Moving the counter far past any of them means the next changes are never hidden behind a
    # device's cursor; the printed horizon lets the operator make every device pull from empty.
    counter = ChangeCounter.__table__
    restored_seq = db.session.execute(db.select(counter.c.value)).scalar_one()
    db.session.execute(db.update(counter).values(value=counter.c.value + RESTORE_SEQ_GAP))
    audit("backup.restore", target=str(path), dialect=dialect, restored_seq=restored_seq)
    db.session.commit()
    click.echo(f"Restored {path} into the {dialect} database. Start the server with the same data key "
               "(and its older versions) that the backup's data was sealed with, and with "
               f"HOMECOMING_SYNC_RESYNC_BEFORE_SEQ={restored_seq + RESTORE_SEQ_GAP} so every device pulls "
               "afresh (docs/operations.md).")
