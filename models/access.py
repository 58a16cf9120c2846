"""Who may see which child (DESIGN §7, issue 13). One place, used by the API, the web pages, exports,
alerts and reports: a manager sees every child, a caseworker the children assigned to them; a user of
an agency marked ``limits_reach`` only those of the children that belong to that agency."""

from sqlalchemy import and_, false, or_, select, true

from models.agencies import Agency
from models.base import db
from models.children import Child

CHILD_READERS = ("manager", "caseworker")


def agency_limit(user):
    """The id of the agency whose children alone ``user`` may reach, or None when their reach is not
    limited (no agency, or an agency without ``limits_reach``)."""
    if getattr(user, "agency_id", None) is None:
        return None
    agency = db.session.get(Agency, user.agency_id)
    return agency.id if agency is not None and agency.limits_reach else None


def caseload_problem(holder, agency_id) -> str | None:
    """Why the user ``holder`` (or None) may not hold a child of agency ``agency_id``, or None. Someone
    whose reach is limited to their agency holds only its children, so a device's pull (which selects
    the caseworker's children) never sends a child that ``child_scope`` would hide."""
    limit = agency_limit(holder) if holder is not None else None
    if limit is None or limit == agency_id:
        return None
    return (f"{holder.username} works for an agency that sees only its own children, and this child "
            "belongs to another agency: transfer the case to that agency first.")


def may_hold(agency_id):
    """The users ``caseload_problem`` lets hold a child of agency ``agency_id``, as a SQL condition on
    User: whoever's agency does not limit reach, and that agency's own staff."""
    from models.accounts import User

    limited = select(Agency.id).where(Agency.limits_reach.is_(True))
    return or_(User.agency_id.is_(None), User.agency_id.not_in(limited), User.agency_id == agency_id)


def child_scope(user):
    """A SQL condition selecting the children ``user`` may see; none for admins and analysts."""
    if user.role == "manager":
        condition = true()
    elif user.role == "caseworker":
        condition = Child.caseworker_id == user.id
    else:
        return false()
    limit = agency_limit(user)
    return condition if limit is None else and_(condition, Child.agency_id == limit)


def can_see_child(user, child: Child) -> bool:
    return child.deleted_at is None and in_reach(user, child)


def in_reach(user, child: Child) -> bool:
    """``user``'s role and agency reach ``child``, live or not (a merged-away child stays in its pair)."""
    if not (user.role == "manager" or (user.role == "caseworker" and child.caseworker_id == user.id)):
        return False
    limit = agency_limit(user)
    return limit is None or child.agency_id == limit


def matches_in_scope(user):
    """A SQL condition on match candidates: both children of a pair (a request has no agency) in reach."""
    from models.matching import MatchCandidate

    if sees_all_children(user):
        return true()
    reach = select(Child.id).where(child_scope(user), Child.deleted_at.is_(None))
    return and_(MatchCandidate.child_id.in_(reach),
                or_(MatchCandidate.other_child_id.is_(None), MatchCandidate.other_child_id.in_(reach)))


def match_visible(user, candidate) -> bool:
    return all(in_reach(user, child) for child_id in (candidate.child_id, candidate.other_child_id)
               if child_id is not None and (child := db.session.get(Child, child_id)) is not None)


def sees_all_children(user) -> bool:
    """A manager whose reach is not limited: ``child_scope`` is no narrowing, so a query may skip it."""
    return user.role == "manager" and agency_limit(user) is None


def manages_reach(user) -> bool:
    """Who may put users in agencies and mark an agency ``limits_reach``: an admin, or a manager whose
    own reach is not limited (a limited manager could otherwise lift their own limit)."""
    return user.role == "admin" or sees_all_children(user)


def sees_restricted(user) -> bool:
    return user.role == "manager"
