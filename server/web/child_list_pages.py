"""The children list: filters, search by name, alias, village or case code (models/search.py), sorting and pages, all within the user's scope.

Only the columns the table shows are selected (two encrypted names instead of every field), and the
caseworker comes from a join, so a page is two queries whatever its size.
"""

from flask import g, request
from sqlalchemy import and_

from models import Child, User, audit, db, utcnow
from models.access import child_scope
from models.age_bands import AGE_BAND_LABELS, AGE_BANDS, age_band_condition
from models.lifecycle import PHASES, STAGES
from models.search import search_condition
from models.vocab import RISK_LEVELS, SEXES
from server.web import bp
from server.web.paging import paginate
from server.web.rendering import render
from server.web.session import login_required

SORTS = {
    "case_code": (Child.case_code,),
    "-case_code": (Child.case_code.desc(),),
    "stage": (Child.stage, Child.case_code),
    "district": (Child.district, Child.case_code),
    "stage_since": (Child.stage_since, Child.case_code),
    "-stage_since": (Child.stage_since.desc(), Child.case_code),
    "-updated_at": (Child.updated_at.desc(), Child.case_code),
}
SORT_LABELS = {"case_code": "Case code (A–Z)", "-case_code": "Case code (Z–A)", "stage": "Stage",
               "district": "District", "stage_since": "Longest in stage", "-stage_since": "Newest in stage",
               "-updated_at": "Recently changed"}


def read_filters(args) -> dict:
    """The filters of the query string that are valid; anything else is ignored, never an error."""
    allowed = {"phase": PHASES, "stage": STAGES, "sex": SEXES, "age_band": AGE_BANDS, "risk_level": RISK_LEVELS}
    filters = {key: args[key] for key, choices in allowed.items() if args.get(key) in choices}
    for key, limit in (("district", 64), ("caseworker", 64), ("q", 100)):
        value = (args.get(key) or "").strip()
        if value and len(value) <= limit:
            filters[key] = value
    if args.get("review") in ("1", "true", "on"):
        filters["review"] = "1"
    return filters


def filtered_children(user, filters: dict):
    conditions = [child_scope(user), Child.deleted_at.is_(None)]
    for key in ("stage", "sex", "risk_level", "district"):
        if key in filters:
            conditions.append(getattr(Child, key) == filters[key])
    if "phase" in filters:
        conditions.append(Child.stage.in_(PHASES[filters["phase"]]))
    if "age_band" in filters:
        conditions.append(age_band_condition(filters["age_band"], utcnow().year))
    if "review" in filters:
        conditions.append(Child.needs_review.is_(True))
    if "q" in filters:
        conditions.append(search_condition(filters["q"]))
    if "caseworker" in filters:
        caseworker_id = db.select(User.id).where(User.username == filters["caseworker"]).scalar_subquery()
        conditions.append(Child.caseworker_id == caseworker_id)
    return and_(*conditions)


@bp.get("/children")
@login_required("manager", "caseworker")
def children():
    filters = read_filters(request.args)
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "case_code"
    where = filtered_children(g.user, filters)
    columns = (Child.id, Child.case_code, Child.given_name, Child.family_name, Child.sex, Child.birth_year,
               Child.district, Child.stage, Child.stage_since, Child.risk_level, Child.needs_review,
               User.username.label("caseworker"))

    def window(limit, offset):
        # Deferred join: the page's ids come from the (covering) index, then only those rows are read,
        # so a deep page costs an index walk, not 50,000 row reads.
        ids = db.select(Child.id).where(where).order_by(*SORTS[sort]).limit(limit).offset(offset).subquery()
        return (db.select(*columns).join(ids, ids.c.id == Child.id)
                .outerjoin(User, User.id == Child.caseworker_id).order_by(*SORTS[sort]))

    stmt = db.select(*columns).outerjoin(User, User.id == Child.caseworker_id).where(where).order_by(*SORTS[sort])
    count = db.select(db.func.count()).select_from(Child).where(where)
    page = paginate(stmt, "web.children", count_stmt=count, window=window)
    html = render(
        "children.html", title="Children", page=page, filters=filters, sort=sort, sort_labels=SORT_LABELS,
        choices=filter_choices(g.user), age_band_labels=AGE_BAND_LABELS, year=utcnow().year,
    )
    audit("child.list", actor=g.user, children=[row.id for row in page.items], via="web", ip=request.remote_addr)
    db.session.commit()
    return html


def filter_choices(user) -> dict:
    """Options for the filter form: districts in use (index-only scan) and, for managers, caseworkers."""
    districts = db.session.execute(
        db.select(Child.district).where(Child.district.is_not(None)).distinct().order_by(Child.district)
    ).scalars().all()
    caseworkers = []
    if user.role == "manager":
        caseworkers = db.session.execute(
            db.select(User.username).where(User.role.in_(("caseworker", "manager"))).order_by(User.username)
        ).scalars().all()
    return {"phase": list(PHASES), "stage": STAGES, "sex": SEXES, "risk_level": RISK_LEVELS,
            "age_band": [(b, AGE_BAND_LABELS[b]) for b in AGE_BANDS], "district": districts,
            "caseworker": caseworkers}
