"""Page-number pagination over an ordered, indexed query, with links that keep the filters."""

from dataclasses import dataclass

from flask import request, url_for
from flask_babel import format_decimal, gettext

from models import db
from server.whole_numbers import whole_number


@dataclass
class Page:
    items: list
    total: int
    number: int
    per_page: int
    prev_url: str | None
    next_url: str | None

    @property
    def summary(self) -> str:
        if not self.total:
            return gettext("Nothing to show")
        first = (self.number - 1) * self.per_page + 1
        last = min(self.total, first + len(self.items) - 1)
        return gettext("%(first)s–%(last)s of %(total)s", first=format_decimal(first), last=format_decimal(last),
                       total=format_decimal(self.total))


def page_number() -> int:
    number = whole_number(request.args.get("page"))
    return max(1, min(number, 100_000)) if number is not None else 1


def paginate(stmt, endpoint: str, per_page: int = 50, count_stmt=None, scalars=False, window=None,
             total=None, **url_args) -> Page:
    """Run ``stmt`` (already ordered) for the requested page; ``count_stmt`` counts all its rows.

    ``window(limit, offset)``, when given, builds the page's statement instead: e.g. a "deferred
    join" that finds the page's ids in an index first and reads only those rows. ``total``, when the
    caller already knows it, saves the count.
    """
    number = page_number()
    if total is None:
        total = db.session.execute(
            count_stmt if count_stmt is not None
            else db.select(db.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
    offset = (number - 1) * per_page
    page_stmt = window(per_page, offset) if window else stmt.limit(per_page).offset(offset)
    result = db.session.execute(page_stmt)
    items = list(result.scalars() if scalars else result.all())
    args = {k: v for k, v in request.args.items() if k != "page" and v != ""}
    args.update(url_args)

    def link(n):
        return url_for(endpoint, page=n, **args)

    return Page(items, total, number, per_page,
                link(number - 1) if number > 1 else None,
                link(number + 1) if number * per_page < total else None)
