"""The dashboard: a handful of GROUP BY counts over the user's scope, each number linking to the list
it counts. The number of queries is fixed, whatever the number of children (see the N+1 test)."""

from datetime import timedelta

from flask import current_app, g, redirect, url_for
from flask_babel import gettext
from markupsafe import Markup
from sqlalchemy import and_, case, func, or_

from models import Child, Device, Followup, db, utcnow
from models.access import child_scope, sees_all_children
from models.age_bands import AGE_BANDS, age_band_of
from models.lifecycle import PHASES
from models.vocab import SEXES
from server.web import bp
from server.web.alert_pages import live_alert_counts
from server.web.charts import FunnelRow, funnel_svg
from server.web.rendering import humanize, render
from server.web.session import login_required

ELSEWHERE = {"admin": "web.users", "analyst": "web.reports"}


def live_children(user):
    return and_(child_scope(user), Child.deleted_at.is_(None))


def child_counts(user, year) -> dict:
    """Children per stage, per (sex, age band), and flagged for review: one GROUP BY over one scan.

    Grouped by birth year in SQL (a few dozen distinct values) and banded here, so the same rows give
    every breakdown the dashboard shows.
    """
    rows = db.session.execute(
        db.select(Child.stage, Child.sex, Child.birth_year, Child.needs_review, func.count())
        .where(live_children(user))
        .group_by(Child.stage, Child.sex, Child.birth_year, Child.needs_review)
    ).all()
    stages: dict[str, int] = {}
    sex_age: dict[tuple[str, str], int] = {}
    review = 0
    for stage, sex, birth_year, needs_review, n in rows:
        stages[stage] = stages.get(stage, 0) + n
        key = (sex, age_band_of(birth_year, year))
        sex_age[key] = sex_age.get(key, 0) + n
        review += n if needs_review else 0
    return {"stages": stages, "sex_age": sex_age, "review": review}


def followup_counts(user, today) -> dict[str, int]:
    """Scheduled follow-ups overdue (due before today) and due this week (today and the next 6 days)."""
    week_end = today + timedelta(days=7)
    overdue = func.sum(case((Followup.due_on < today, 1), else_=0))
    this_week = func.sum(case((Followup.due_on >= today, 1), else_=0))
    stmt = (db.select(overdue, this_week).select_from(Followup)
            .where(Followup.status == "scheduled", Followup.deleted_at.is_(None), Followup.due_on < week_end))
    if not sees_all_children(user):
        stmt = stmt.join(Child, Child.id == Followup.child_id).where(live_children(user))
    row = db.session.execute(stmt).one()
    return {"overdue": row[0] or 0, "week": row[1] or 0}


def stale_devices(days: int) -> int:
    cutoff = utcnow() - timedelta(days=days)
    return db.session.execute(
        db.select(func.count()).select_from(Device)
        .where(Device.revoked_at.is_(None), or_(Device.last_seen_at.is_(None), Device.last_seen_at < cutoff))
    ).scalar_one()


def funnel(counts: dict[str, int]) -> Markup:
    """The funnel as a picture only: an image holds no links (axe: nested-interactive); the table
    beside it has the same numbers, each a link."""
    rows = [FunnelRow(humanize(stage), counts.get(stage, 0), None, humanize(phase))
            for phase, stages in PHASES.items() for stage in stages]
    rows.append(FunnelRow(humanize("missing"), counts.get("missing", 0), None, gettext("any stage")))
    # funnel_svg escapes every label itself.
    return Markup(funnel_svg(rows, title=gettext("Children per phase and stage")))


@bp.get("/")
@login_required()
def dashboard():
    user = g.user
    if user.role in ELSEWHERE:
        endpoint = ELSEWHERE[user.role]
        if endpoint in current_app.view_functions:
            return redirect(url_for(endpoint))
        return redirect(url_for("web.account"))
    today = utcnow().date()
    children = child_counts(user, today.year)
    counts = children["stages"]
    stale_days = current_app.config["WEB_DEVICE_STALE_DAYS"]
    return render(
        "dashboard.html", title=gettext("Dashboard"),
        total=sum(counts.values()), counts=counts, funnel=funnel(counts), phases=PHASES,
        followups=followup_counts(user, today), alerts=live_alert_counts(user),
        sexes=SEXES, age_bands=AGE_BANDS, sex_age=children["sex_age"],
        stale_days=stale_days, stale=stale_devices(stale_days) if user.role == "manager" else None,
        review=children["review"], open_conflicts=open_conflict_count(user),
    )


def open_conflict_count(user) -> int:
    from server.web.conflict_pages import open_conflicts_query

    return db.session.execute(
        db.select(func.count()).select_from(open_conflicts_query(user).subquery())
    ).scalar_one()
