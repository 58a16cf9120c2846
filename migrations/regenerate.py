"""Regenerate the initial migration from the models (before the first release only).

Until Homecoming has a release with data to keep, the schema lives in one revision, 0001. After a model
change run ``make migration``: it rebuilds 0001 against an empty SQLite database and adds the row the
change sequence needs. After the first release, add new revisions with ``flask db migrate`` instead.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COUNTER_ROW = """    # The one row of the change sequence (models/changes.py).
    op.bulk_insert(sa.table('change_counter', sa.column('id', sa.Integer), sa.column('value', sa.BigInteger)),
                   [{'id': 1, 'value': 0}])
"""
ANCHOR = "    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_counter'))\n    )\n"


def main():
    for old in (HERE / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HOMECOMING_DATABASE_URL": f"sqlite:///{tmp}/empty.sqlite",
               "HOMECOMING_CONFIG": "development", "HOMECOMING_SECRET_KEY": "x",
               "HOMECOMING_DATA_KEY": "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA=",
               "HOMECOMING_SEARCH_KEY": "dGVzdC1zZWFyY2gta2V5LXRlc3Qtc2VhcmNoLWtleTA="}
        flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
        subprocess.run([*flask, "migrate", "-m", "initial schema", "--rev-id", "0001"],
                       env=env, check=True, cwd=HERE.parent)
    (path,) = (HERE / "versions").glob("0001_*.py")
    text = path.read_text()
    text = text.replace("import sqlalchemy as sa\nimport sqlalchemy as sa\n", "import sqlalchemy as sa\n")
    text = text.replace(ANCHOR, ANCHOR + COUNTER_ROW, 1)
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("Create Date:")]
    path.write_text("".join(lines))
    print(f"rebuilt {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
