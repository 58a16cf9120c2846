"""``flask search reindex``: rebuild the name-search index (models/search.py) from the children's
encrypted names, after a new HOMECOMING_SEARCH_KEY or on a database filled before the index existed."""

import click
from flask.cli import AppGroup

from models import Child, db
from models.search import reindex_page

search = AppGroup("search", help="The name-search blind index.")


@search.command("reindex")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
def reindex_command(batch_size):
    """Rewrite every child's search tokens, one committed batch at a time (safe to run again)."""
    total = db.session.execute(db.select(db.func.count()).select_from(Child)).scalar_one()
    done, last = 0, None
    with click.progressbar(length=total, label="Reindexing children") as bar:
        while (last := reindex_page(last, batch_size)) is not None:
            db.session.commit()
            step = min(batch_size, total - done)
            done += step
            bar.update(step)
    click.echo(f"{total} children reindexed.")
