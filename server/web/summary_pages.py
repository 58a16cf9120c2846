"""A child's case summary for a case conference: one page, printable (records.css's print rules).

Reading it is audited like the child page (``child.summary``). The restricted CAAFAG profile is left
out unless a manager asks for it with the form on the page (a POST, audited as a restricted read).
"""

from flask import g, request
from flask_babel import gettext

from models import Consent, audit, db
from server.api.common import today
from server.web import bp
from server.web.child_pages import child_name, due_followups, profile_sections, timeline
from server.web.forms import LABELS
from server.web.rendering import load_child, render
from server.web.session import login_required


def summary_page(child_id, *, restricted: bool):
    child = load_child(child_id)
    audit("child.restricted_read" if restricted else "child.summary", actor=g.user, child_id=child.id,
          via="web", ip=request.remote_addr, **({"summary": True} if restricted else {}))
    consents = db.session.execute(
        db.select(Consent).where(Consent.child_id == child.id, Consent.deleted_at.is_(None))
        .order_by(Consent.given_on)).scalars().all()
    html = render("child_summary.html", title=gettext("Case summary %(code)s", code=child.case_code), child=child,
                  name=child_name(child), sections=profile_sections(child, restricted), labels=LABELS,
                  timeline=timeline(child), due=due_followups(child), consents=consents, today=today(),
                  restricted=restricted, can_see_restricted=g.user.is_manager)
    db.session.commit()
    return html


@bp.get("/children/<child_id>/summary")
@login_required("manager", "caseworker")
def child_summary(child_id):
    return summary_page(child_id, restricted=False)


@bp.post("/children/<child_id>/summary")
@login_required("manager")
def child_summary_restricted(child_id):
    return summary_page(child_id, restricted=True)
