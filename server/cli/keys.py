"""``flask keys``: the data key ring (docs/operations.md "Key rotation")."""

import base64
import secrets

import click
from flask.cli import with_appcontext

from models import audit, crypto, db
from models.key_rotation import count_by_version, encrypted_columns, pending, rotate_batch


@click.group(help="The data key ring: status, a new key, rotation.")
def keys():
    pass


@keys.command(help="Print a new random key (for HOMECOMING_DATA_KEY, a key file line VERSION:KEY, "
                   "or the backup key).")
def generate():
    click.echo(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())


@keys.command(help="Count stored values per data key version.")
@with_appcontext
def status():
    current = crypto.current_version()
    counts = count_by_version(db.session)
    click.echo(f"current data key: version {current}; configured: "
               + ", ".join(f"k{v}" for v in crypto.known_versions()))
    for label in sorted(counts, key=lambda name: (name == "unknown", name)):
        marker = "  (current)" if label == f"k{current}" else ""
        click.echo(f"  {label}: {counts[label]} values{marker}")
    if not counts:
        click.echo("  no encrypted values stored")
    db.session.rollback()


@keys.command(help="Re-encrypt every stored value under the current data key, in short batches while "
                   "the app keeps serving. Stop it any time; running it again continues.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--limit", type=click.IntRange(1), help="Stop after this many values (a partial run).")
@with_appcontext
def rotate(batch_size, limit):
    targets = encrypted_columns()
    todo = {target.name: pending(db.session, target) for target in targets}
    db.session.rollback()
    total = sum(todo.values())
    current = crypto.current_version()
    if not total:
        click.echo(f"Every value is already under data key version {current}.")
        return
    done = 0
    try:
        with click.progressbar(length=min(total, limit or total),
                               label=f"Re-encrypting under k{current}") as bar:
            for target in targets:
                while todo[target.name] and (limit is None or done < limit):
                    size = batch_size if limit is None else min(batch_size, limit - done)
                    rotated = rotate_batch(db.session, target, size)
                    db.session.commit()  # one short transaction per batch: the app keeps writing
                    if not rotated:
                        break
                    done += rotated
                    todo[target.name] = max(0, todo[target.name] - rotated)
                    bar.update(rotated)
    except crypto.DataKeyError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    audit("keys.rotate", target=f"k{current}", values=done)
    db.session.commit()
    left = total - done
    click.echo(f"Re-encrypted {done} values under data key version {current}."
               + (f" {left} remain: run `flask keys rotate` again." if left > 0 else
                  " None is left under an older key; the old key can be removed once backups made with "
                  "it are no longer needed."))
