"""The end of every writer's unit of work: commit, then plan the children it touched.

Planning (models.planning.after_changes) reads committed state and is idempotent; it is not part of
the change that was asked for. So the change is committed first, and a planning failure is rolled
back and logged, by child ids only, and left to the scheduler's next scan: a device must not retry a
batch that went in, nor a person retype a form that was saved. The sync endpoint, the JSON API and
the web pages all end this way.
"""

import logging
from datetime import date

from models.base import db
from models.planning import after_changes

log = logging.getLogger(__name__)


def commit_and_plan(child_ids, *, today: date, rules: dict) -> None:
    db.session.commit()
    child_ids = set(child_ids)
    if not child_ids:
        return
    try:
        after_changes(child_ids, today=today, rules=rules)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("follow-up planning failed for children %s; the next scan plans them",
                      ", ".join(sorted(str(cid) for cid in child_ids)))
