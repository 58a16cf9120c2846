"""CSV exports of the indicator report.

- The **de-identified** export is the report's own display cells (small cells already suppressed),
  one figure per line: nothing in it is about one child.
- The **identified** export is a case-level list for managers: the children counted in the period,
  with their names and aggregate fields and which indicators counted them. Restricted (CAAFAG) fields
  are never in it, and neither are notes, villages or contacts: it carries only the columns listed in
  ``IDENTIFIED_COLUMNS``. It lists only children the exporter may see and who have a ``reporting``
  consent in force (issue 13); the aggregates of the de-identified export count every child. The
  caller audits it.

Every cell of both goes through ``spreadsheet_safe`` so a value such as ``=HYPERLINK(...)`` typed
into a name can never run as a formula when the file is opened in a spreadsheet.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date

from sqlalchemy import select

from models.age_bands import AGE_BAND_LABELS
from models.base import db
from models.children import Child
from models.consent_gates import consent_in_force_clause
from models.indicators import CHILD_INDICATORS, Period, age_band
from models.lifecycle import StageTransition, phase_of
from models.reporting import COLUMNS, Report

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """Text a spreadsheet shows as text: a leading ``'`` stops it reading the cell as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """CSV text, one line at a time (for streaming), every cell made spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


DEIDENTIFIED_HEADER = ("period_start", "period_end", "table", "indicator", "breakdown", "value")


def deidentified_rows(report: Report) -> Iterator[tuple]:
    """The figures of the report exactly as shown: display cells, suppression applied."""
    start, end = report.period.start.isoformat(), report.period.end.isoformat()
    yield DEIDENTIFIED_HEADER
    column_labels = {key: label for key, label, _ in COLUMNS}
    for table, rows in (("indicators", report.main), ("closures_by_reason", report.closures)):
        for row in rows:
            for key, value in row.cells.items():
                yield (start, end, table, row.label, column_labels[key], value)
    for row in report.by_district:
        for district in report.districts:
            yield (start, end, "by_district", row.label, district, row.cells[district])
    referral_labels = dict(report.referral_columns)
    for row in report.referrals:
        for key, value in row.cells.items():
            yield (start, end, "referrals_by_outcome", row.label, referral_labels[key], value)


# Case-level columns: identity needed to act on the list, and aggregate fields. Nothing restricted.
IDENTIFIED_COLUMNS = (
    ("case_code", "case_code"), ("given_name", "given_name"), ("family_name", "family_name"),
    ("sex", "sex"), ("birth_year", "birth_year"), ("age_band", None), ("district", "district"),
    ("child_mother", "child_mother"), ("phase", None), ("stage", "stage"), ("stage_since", "stage_since"),
    ("identified_on", "identified_on"), ("closure_reason", None),
)


def identified_children(period: Period, *, scope, on: date) -> tuple[dict, dict, int]:
    """The children an identified export of the period holds: {child id: indicator keys},
    {child id: closure reason}, and how many counted children were left out for want of a
    ``reporting`` consent in force ``on`` the day of the export (models.consent_gates). ``scope``: the
    exporting user's ``models.access.child_scope``. Worked out before the export streams, so its audit
    can name them. Set-based: one query per indicator for the ids, then the listable ones in batches."""
    counted: dict = {}
    for key, (_, ids) in CHILD_INDICATORS.items():
        for (child_id,) in db.session.execute(ids(period)):
            counted.setdefault(child_id, set()).add(key)
    closures = dict(db.session.execute(
        select(StageTransition.child_id, StageTransition.closure_reason).where(
            StageTransition.to_stage == "closed", StageTransition.deleted_at.is_(None),
            StageTransition.occurred_on.between(period.start, period.end))
    ).all())
    for child_id in closures:
        counted.setdefault(child_id, set()).add("closed")
    ids, live, listed = list(counted), set(), set()
    for i in range(0, len(ids), 500):
        batch = (Child.id.in_(ids[i:i + 500]), Child.deleted_at.is_(None), scope)
        live.update(db.session.execute(select(Child.id).where(*batch)).scalars())
        listed.update(db.session.execute(select(Child.id).where(
            *batch, consent_in_force_clause(Child, "reporting", on))).scalars())
    return {k: v for k, v in counted.items() if k in listed}, closures, len(live - listed)


def identified_rows(period: Period, counted: dict, closures: dict) -> Iterator[tuple]:
    """One line for each child of ``identified_children``, with a yes/no per indicator."""
    indicator_keys = [*CHILD_INDICATORS, "closed"]
    yield (*(name for name, _ in IDENTIFIED_COLUMNS), *indicator_keys)
    ids = list(counted)
    # Load only the listed columns: the restricted ones are never even decrypted.
    wanted = [getattr(Child, attr) for _, attr in IDENTIFIED_COLUMNS if attr]
    for i in range(0, len(ids), 500):
        batch = db.session.execute(
            select(Child.id, age_band(period.end.year).label("band"), *wanted).where(Child.id.in_(ids[i:i + 500]))
            .order_by(Child.case_code)
        ).mappings()
        for child in batch:
            values = []
            for name, attr in IDENTIFIED_COLUMNS:
                if attr:
                    values.append(child[attr])
                elif name == "age_band":
                    values.append(AGE_BAND_LABELS[child["band"]])
                elif name == "phase":
                    values.append(phase_of(child["stage"]) or "")
                elif name == "closure_reason":
                    values.append(closures.get(child["id"]) or "")
            flags = counted[child["id"]]
            yield (*values, *("yes" if key in flags else "no" for key in indicator_keys))

