"""The migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import ChangeCounter, db


def test_migrations_match_the_models(ctx):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == [], "run `make migration` after changing a model:\n" + "\n".join(map(str, diff))


def test_the_change_counter_row_exists(ctx):
    assert db.session.get(ChangeCounter, 1) is not None
