"""Partner agencies: everyone who works with children may list them (to refer to one); managers
create and change them. The contact person's details are personal: shown to managers and caseworkers
only, who are the roles allowed here at all."""

from flask import g
from marshmallow import fields, validate

from models import db
from models.access import CHILD_READERS, manages_reach
from models.agencies import AGENCY_KINDS, Agency, save_agency
from models.errors import ManagerOnly
from models.schemas import Strict
from server.api import Blueprint
from server.api.common import not_found
from server.auth import require_user

blp = Blueprint("agencies", __name__, url_prefix="/api/v1", description="Partner agencies")


class AgencyFields(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    kind = fields.String(required=True, validate=validate.OneOf(AGENCY_KINDS))
    district = fields.String(allow_none=True, validate=validate.Length(max=64))
    contact = fields.String(allow_none=True, validate=validate.Length(max=500))
    active = fields.Boolean()
    limits_reach = fields.Boolean()


def agency_body(agency: Agency) -> dict:
    return {"id": str(agency.id), "name": agency.name, "kind": agency.kind, "district": agency.district,
            "contact": agency.contact, "active": agency.active,
            "limits_reach": agency.limits_reach}


def _check_reach(data) -> None:
    if "limits_reach" in data and not manages_reach(g.user):
        raise ManagerOnly("Only a manager whose own reach is not limited may change which agencies limit it.")


@blp.get("/agencies")
@require_user(*CHILD_READERS)
def list_agencies():
    agencies = db.session.execute(db.select(Agency).order_by(Agency.name)).scalars()
    return {"items": [agency_body(a) for a in agencies]}


@blp.post("/agencies")
@blp.arguments(AgencyFields)
@require_user("manager")
def create_agency(data):
    _check_reach(data)
    agency = save_agency(data)
    db.session.commit()
    return agency_body(agency), 201


@blp.patch("/agencies/<uuid:agency_id>")
@blp.arguments(AgencyFields(partial=True))
@require_user("manager")
def update_agency(data, agency_id):
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        raise not_found("agency")
    _check_reach(data)
    save_agency(data, agency)
    db.session.commit()
    return agency_body(agency)
