"""Partner agencies on the web: the list, a form to add one and a form per agency to change it
(managers only); who belongs to which agency, and which agencies limit their staff's reach (managers
whose own reach is not limited, and admins from /users: models.access.manages_reach)."""

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext

from models import User, db
from models.access import manages_reach
from models.agencies import AGENCY_KINDS, Agency, save_agency, set_user_agency
from models.errors import FieldErrors
from server.web import bp
from server.web.forms import errors_of, form_values
from server.web.rendering import parse_uuid, render
from server.web.session import login_required

FIELDS = ("name", "kind", "district", "contact")


def agencies_page(status=200, *, errors=None, form=None):
    agencies = db.session.execute(db.select(Agency).order_by(Agency.name)).scalars().all()
    staff = db.session.execute(db.select(User).where(User.active.is_(True), User.role.in_(("manager", "caseworker")))
                               .order_by(User.username)).scalars().all() if manages_reach(g.user) else []
    return render("agencies.html", status, title=gettext("Partner agencies"), agencies=agencies, kinds=AGENCY_KINDS,
                  errors=errors or {}, form=form or {}, staff=staff, manages_reach=manages_reach(g.user),
                  agency_choices=[(str(a.id), a.name) for a in agencies])


@bp.get("/agencies")
@login_required("manager")
def agencies():
    return agencies_page()


def _save(form_name: str, agency: Agency | None):
    # Both forms send every field: one left out is empty, not kept. The add form has no "active" box.
    booleans = ("active", "limits_reach") if manages_reach(g.user) else ("active",)
    values = form_values(request.form, (*FIELDS, *booleans) if agency else FIELDS, booleans=booleans)
    data = {**dict.fromkeys(FIELDS), **values}
    try:
        saved = save_agency(data, agency)
    except FieldErrors as exc:
        db.session.rollback()
        return agencies_page(422, errors={form_name: errors_of(exc)}, form={form_name: request.form})
    db.session.commit()
    flash(gettext("Saved the agency %(name)s.", name=saved.name), "success")
    return redirect(url_for("web.agencies"))


@bp.post("/agencies")
@login_required("manager")
def agency_create():
    return _save("new", None)


@bp.post("/agencies/<agency_id>")
@login_required("manager")
def agency_update(agency_id):
    agency = db.get_or_404(Agency, parse_uuid(agency_id))
    return _save(f"edit-{agency.id}", agency)


@bp.post("/staff/<user_id>/agency")
@login_required("manager", "admin")
def staff_agency(user_id):
    """Put a manager or caseworker in an agency, or in none (an empty choice)."""
    if not manages_reach(g.user):
        abort(403)
    member = db.get_or_404(User, parse_uuid(user_id))
    try:
        set_user_agency(member, request.form.get("agency_id"), g.user)
    except FieldErrors as exc:
        db.session.rollback()
        flash(" ".join(errors_of(exc)["agency_id"]), "error")
    else:
        db.session.commit()
        flash(gettext("Saved the agency of %(username)s.", username=member.username), "success")
    return redirect(url_for("web.users" if request.form.get("back") == "users" else "web.agencies"))
