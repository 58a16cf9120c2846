"""The caseload file a form picks a child from, built for one device when it downloads the form.

It lists the children assigned to the device's caseworker, open cases only: the case code (the value a
submission sends back) and a label. By default the label is the case code and the first given name;
``ODK_CASELOAD_FIELDS`` chooses what else the label shows (docs/odk.md says what a lost phone then reveals). Restricted
fields can never be named there. Each download is audited with the children it listed.
"""

import csv
import io

from models import audit
from models.base import db
from models.children import Child
from models.sensitivity import AGGREGATE, PERSONAL, fields_of

DEFAULT_FIELDS = ("given_name",)


def allowed_fields() -> set[str]:
    return set(fields_of(Child, AGGREGATE, PERSONAL)) - {"caseworker_id", "agency_id", "id", "case_code"}


def fields_problems(names) -> list[str]:
    wrong = sorted(set(names) - allowed_fields())
    if not wrong:
        return []
    return [f"HOMECOMING_ODK_CASELOAD_FIELDS names {', '.join(wrong)}, which cannot go on a phone; choose "
            f"from {', '.join(sorted(allowed_fields()))} (restricted fields never can)"]


def caseload_csv(device, names, *, audited: bool) -> bytes:
    """The CSV for ``device``: ``name`` is the case code, ``label`` the case code followed by the values
    of ``names`` (of the given names, the first only). ``audited``: the download itself, not the hash
    the manifest announces."""
    columns = [getattr(Child, n) for n in names]
    rows = db.session.execute(
        db.select(Child.id, Child.case_code, *columns)
        .where(Child.caseworker_id == device.user_id, Child.deleted_at.is_(None), Child.stage != "closed")
        .order_by(Child.case_code)).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "label"])
    for row in rows:
        values = [_shown(name, value) for name, value in zip(names, row[2:], strict=True)]
        writer.writerow([row.case_code, " ".join([row.case_code, *(v for v in values if v)])])
    if audited:
        audit("odk.caseload", actor=device.user_id, device=device.id, children=[row.id for row in rows])
    return out.getvalue().encode()


def _shown(name: str, value) -> str:
    if value is None:
        return ""
    return str(value).split(" ")[0] if name == "given_name" else str(value)
