"""Follow-up planning and the alerts raised at once (DESIGN §2), run after every path that changes a
child: the JSON API, a sync batch, the web pages.

``after_changes`` is called with the ids of the children a committed unit of work touched. It reads
committed state, creates or re-plans follow-ups and raises urgent alerts, flushes and never commits;
running it twice changes nothing.
"""

from datetime import date
from uuid import UUID


def after_changes(child_ids: set[UUID], *, today: date, rules: dict) -> None:
    """Plan follow-ups and raise urgent alerts for these children (filled in by the scheduler work)."""
    return None
