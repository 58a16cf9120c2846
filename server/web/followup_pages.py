"""Follow-ups due and overdue: counts by caseworker and district, then the list itself."""

from datetime import timedelta

from flask import abort, g, request
from flask_babel import gettext
from sqlalchemy import and_, case, func

from models import Child, Followup, User, audit, db, utcnow
from models.access import child_scope, sees_all_children
from models.vocab import CONCERNS, FOLLOWUP_KINDS, NOT_SEEN_REASONS, RISK_LEVELS, WELLBEING
from server.web import bp
from server.web.paging import paginate
from server.web.rendering import load_child, parse_uuid, render
from server.web.session import login_required

WHEN = {"overdue": "Overdue", "week": "Due this week", "all": "Overdue and due this week"}


def due_conditions(user, when: str, today, child_filters=()):
    """Scheduled follow-ups due in the window, of live children in scope (and matching ``child_filters``).

    A narrowing of the children (a caseworker's scope, a district) is an ``IN`` over the children's
    ids: checked on the follow-up index's child_id before any child row is read.
    """
    week_end = today + timedelta(days=7)
    # Only follow-up columns here: callers that join the child add Child.deleted_at themselves.
    conditions = [Followup.status == "scheduled", Followup.deleted_at.is_(None)]
    narrowing = [*([] if sees_all_children(user) else [child_scope(user)]), *child_filters]
    if narrowing:
        conditions.append(Followup.child_id.in_(
            db.select(Child.id).where(Child.deleted_at.is_(None), *narrowing)))
    if when == "overdue":
        conditions.append(Followup.due_on < today)
    elif when == "week":
        conditions += [Followup.due_on >= today, Followup.due_on < week_end]
    else:
        conditions.append(Followup.due_on < week_end)
    return and_(*conditions)


@bp.get("/followups")
@login_required("manager", "caseworker")
def followups():
    today = utcnow().date()
    when = request.args.get("when") if request.args.get("when") in WHEN else "all"
    filters, child_filters = [], []
    caseworker = (request.args.get("caseworker") or "").strip()[:64]
    district = (request.args.get("district") or "").strip()[:64]
    kind = request.args.get("kind") if request.args.get("kind") in FOLLOWUP_KINDS else None
    if caseworker == "-":
        child_filters.append(Child.caseworker_id.is_(None))
    elif caseworker:
        child_filters.append(Child.caseworker_id == db.select(User.id).where(User.username == caseworker)
                             .scalar_subquery())
    if district == "-":
        child_filters.append(Child.district.is_(None))
    elif district:
        child_filters.append(Child.district == district)
    where = due_conditions(g.user, when, today, child_filters)
    if kind:
        filters.append(Followup.kind == kind)

    overdue = func.sum(case((Followup.due_on < today, 1), else_=0))
    this_week = func.sum(case((Followup.due_on >= today, 1), else_=0))
    # Summed per child in the covering follow-up index first, then one child lookup per child rather
    # than one per follow-up.
    per_child = (db.select(Followup.child_id, overdue.label("overdue"), this_week.label("week"))
                 .where(due_conditions(g.user, "all", today)).group_by(Followup.child_id).subquery())
    groups = db.session.execute(
        db.select(User.username, Child.district, func.sum(per_child.c.overdue), func.sum(per_child.c.week))
        .select_from(per_child).join(Child, Child.id == per_child.c.child_id)
        .outerjoin(User, User.id == Child.caseworker_id)
        .where(Child.deleted_at.is_(None))
        .group_by(User.username, Child.district).order_by(User.username, Child.district)
    ).all()

    stmt = (
        db.select(Followup.id, Followup.kind, Followup.due_on, Followup.planned_by_rule, Child.id.label("child_id"),
                  Child.case_code, Child.given_name, Child.family_name, Child.village, Child.district, Child.stage,
                  Child.risk_level, User.username.label("caseworker"))
        .select_from(Followup).join(Child, Child.id == Followup.child_id)
        .outerjoin(User, User.id == Child.caseworker_id)
        .where(where, Child.deleted_at.is_(None), *filters).order_by(Followup.due_on, Child.case_code)
    )
    count = (db.select(func.count()).select_from(Followup).join(Child, Child.id == Followup.child_id)
             .outerjoin(User, User.id == Child.caseworker_id).where(where, Child.deleted_at.is_(None), *filters))
    total = None if kind else sum(
        (n_overdue if when != "week" else 0) + (n_week if when != "overdue" else 0)
        for username, district_name, n_overdue, n_week in groups
        if (not caseworker or (username or "-") == caseworker)
        and (not district or (district_name or "-") == district)
    )  # the groups already counted it: no second pass over the join
    page = paginate(stmt, "web.followups", count_stmt=count, total=total)
    html = render("followups.html", title="Follow-ups", groups=groups, page=page, when=when, when_labels=WHEN,
                  today=today, caseworker=caseworker, district=district, kind=kind, kinds=FOLLOWUP_KINDS)
    # Names and villages are on the page (only managers and caseworkers reach it): a read of those children.
    audit("followup.list", actor=g.user, children=list({row.child_id for row in page.items}), via="web",
          ip=request.remote_addr)
    db.session.commit()
    return html


def visit_page(followup, child, status=200, *, errors=None, form=None):
    from server.web.child_pages import child_name

    return render("followup_visit.html", status, title=gettext("Record a visit: %(code)s", code=child.case_code), fu=followup,
                  child=child, name=child_name(child), errors=errors or {}, form=form or {}, today=utcnow().date(),
                  not_seen_reasons=NOT_SEEN_REASONS, wellbeing=WELLBEING, risk_levels=RISK_LEVELS, concerns=CONCERNS)


def load_followup(followup_id) -> tuple[Followup, Child]:
    """The follow-up and its child; 404 if either is gone or the child is out of the user's scope."""
    followup = db.session.get(Followup, parse_uuid(followup_id))
    if followup is None or followup.deleted_at is not None:
        abort(404)
    return followup, load_child(followup.child_id)


@bp.get("/followups/<followup_id>/visit")
@login_required("manager", "caseworker")
def followup_visit(followup_id):
    """The outcome form of one follow-up, reached from the list; saving returns to the list."""
    followup, child = load_followup(followup_id)
    audit("child.read", actor=g.user, child_id=child.id, via="web", ip=request.remote_addr)
    db.session.commit()
    return visit_page(followup, child)
