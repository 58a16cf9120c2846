"""Partner agencies on the web: the list, a form to add one and a form per agency to change it
(managers only)."""

from flask import flash, redirect, request, url_for
from flask_babel import gettext

from models import db
from models.agencies import AGENCY_KINDS, Agency, save_agency
from models.errors import FieldErrors
from server.web import bp
from server.web.forms import errors_of, form_values
from server.web.rendering import parse_uuid, render
from server.web.session import login_required

FIELDS = ("name", "kind", "district", "contact")


def agencies_page(status=200, *, errors=None, form=None):
    agencies = db.session.execute(db.select(Agency).order_by(Agency.name)).scalars().all()
    return render("agencies.html", status, title=gettext("Partner agencies"), agencies=agencies, kinds=AGENCY_KINDS,
                  errors=errors or {}, form=form or {})


@bp.get("/agencies")
@login_required("manager")
def agencies():
    return agencies_page()


def _save(form_name: str, agency: Agency | None):
    # Both forms send every field: one left out is empty, not kept. The add form has no "active" box.
    values = form_values(request.form, (*FIELDS, "active") if agency else FIELDS, booleans=("active",))
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
