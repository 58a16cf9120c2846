"""Reports (DESIGN §6): the donor indicators for a date range, their charts, and the CSV exports.

Managers and analysts see the page; every figure on it is de-identified and small cells are already
suppressed by ``models.reporting``. The identified (case-level) export is a POST so it carries the
CSRF token, is manager-only, and is audited before a byte is sent.
"""

import calendar
from datetime import date

from flask import Response, g, request, stream_with_context
from markupsafe import Markup

from models import audit, db, utcnow
from models.exports import csv_lines, deidentified_rows, identified_children, identified_rows
from models.indicators import Period
from models.reporting import AGE_COLUMNS, SEX_COLUMNS, Report, build_report
from server.web import bp
from server.web.charts import bar_svg
from server.web.rendering import render
from server.web.session import login_required

REPORT_READERS = ("manager", "analyst")
# The rows charted by sex and age band: the child counts (follow-ups are visits, not children).
CHARTED = ("identified", "registered", "reunified", "school_or_training", "rerecruited_or_missing", "closed")
SHORT = {"identified": "identified", "registered": "registered", "reunified": "reunified",
         "school_or_training": "school/training", "rerecruited_or_missing": "re-recruited/missing",
         "closed": "closed"}


def parse_period(args, *, whole_months: bool = False) -> tuple[Period | None, dict[str, list[str]], dict]:
    """The period asked for, or errors per field. Defaults: 1 January of this year to today.

    With ``whole_months`` (analysts) it is widened to whole calendar months: two periods a day apart
    would otherwise differ by one day's children, and subtracting the one shown total from the other
    would single out a child that the "<5" rule hides."""
    today = utcnow().date()
    values = {"start": args.get("start") or date(today.year, 1, 1).isoformat(),
              "end": args.get("end") or today.isoformat()}
    errors, parsed = {}, {}
    for name, text in values.items():
        try:
            parsed[name] = date.fromisoformat(text.strip())
        except ValueError:
            errors[name] = ["Give a date as YYYY-MM-DD."]
    if not errors and parsed["end"] < parsed["start"]:
        errors["end"] = ["The end must not be before the start."]
    if errors:
        return None, errors, values
    start, end = parsed["start"], parsed["end"]
    if whole_months:
        start = start.replace(day=1)
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
        values = {"start": start.isoformat(), "end": end.isoformat()}
    return Period(start, end), {}, values


def _period_for_user(args):
    return parse_period(args, whole_months=g.user.role == "analyst")


def charts(report: Report) -> dict[str, Markup]:
    """SVG charts of the report's display cells: a suppressed cell is drawn as its text, no bar."""
    rows = {row.key: row for row in report.main if row.key in CHARTED}
    keys = [k for k in CHARTED if k in rows]
    categories = [SHORT[k] for k in keys]
    out = {
        "by_sex": bar_svg(categories, [(label, [rows[k].cells[col] for k in keys]) for col, label, _ in SEX_COLUMNS],
                          title="Children by indicator and sex", width=720),
        "by_age": bar_svg(categories, [(label, [rows[k].cells[col] for k in keys]) for col, label, _ in AGE_COLUMNS],
                          title="Children by indicator and age band", width=720),
    }
    by_district = {row.key: row for row in report.by_district}
    if report.districts:
        out["by_district"] = bar_svg(
            report.districts,
            [(by_district[k].label, [by_district[k].cells[d] for d in report.districts])
             for k in ("identified", "reunified", "school_or_training") if k in by_district],
            title="Children identified, reunified and in school or training, by district", width=720)
    if report.closures:
        out["closures"] = bar_svg([row.label for row in report.closures],
                                  [("closures", [row.cells["total"] for row in report.closures])],
                                  title="Cases closed by reason")
    # bar_svg escapes every label itself.
    return {name: Markup(svg) for name, svg in out.items()}


@bp.get("/reports")
@login_required(*REPORT_READERS)
def reports():
    period, errors, values = _period_for_user(request.args)
    if errors:
        return render("reports.html", 400, title="Reports", report=None, errors=errors, values=values)
    report = build_report(period.start, period.end, today=utcnow().date())
    return render("reports.html", title="Reports", report=report, charts=charts(report), errors={},
                  values=values, can_identify=g.user.role == "manager", whole_months=g.user.role == "analyst")


def _filename(period: Period, kind: str) -> str:
    return f"homecoming-{kind}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"


def _csv_response(lines, filename: str) -> Response:
    return Response(lines, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/reports/indicators.csv")
@login_required(*REPORT_READERS)
def export_indicators():
    """The de-identified export: the report's figures as shown, small cells suppressed."""
    period, errors, _ = _period_for_user(request.args)
    if errors:
        return render("reports.html", 400, title="Reports", report=None, errors=errors,
                      values={"start": request.args.get("start", ""), "end": request.args.get("end", "")})
    report = build_report(period.start, period.end, today=utcnow().date())
    body = "".join(csv_lines(deidentified_rows(report)))
    audit("export.deidentified", actor=g.user, ip=request.remote_addr,
          start=period.start.isoformat(), end=period.end.isoformat())
    db.session.commit()
    return _csv_response(body, _filename(period, "indicators"))


@bp.post("/reports/cases.csv")
@login_required("manager")
def export_cases():
    """The identified export: a case-level list with names, manager-only, audited, never restricted
    fields. Streamed, since a long period can list many thousands of children."""
    period, errors, values = parse_period(request.form)
    if errors:
        return render("reports.html", 400, title="Reports", report=None, errors=errors, values=values)
    counted, closures = identified_children(period)
    audit("export.identified", actor=g.user, ip=request.remote_addr, children=counted,
          start=period.start.isoformat(), end=period.end.isoformat())
    db.session.commit()
    rows = identified_rows(period, counted, closures)
    return _csv_response(stream_with_context(csv_lines(rows)), _filename(period, "cases"))
