"""Who may see which child (DESIGN §7). One place, used by the API, the web pages and exports."""

from sqlalchemy import false, true

from models.children import Child

CHILD_READERS = ("manager", "caseworker")


def child_scope(user):
    """A SQL condition selecting the children ``user`` may see; none for admins and analysts."""
    if user.role == "manager":
        return true()
    if user.role == "caseworker":
        return Child.caseworker_id == user.id
    return false()


def can_see_child(user, child: Child) -> bool:
    if child.deleted_at is not None:
        return False
    return user.role == "manager" or (user.role == "caseworker" and child.caseworker_id == user.id)


def sees_restricted(user) -> bool:
    return user.role == "manager"
