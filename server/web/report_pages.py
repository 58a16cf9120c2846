"""Reports (DESIGN §6): the donor indicators for a date range, their charts, and the CSV exports.

Managers and analysts see the page; every figure on it is de-identified and small cells are already
suppressed by ``models.reporting``. A manager may switch to the internal view (``?view=internal``):
the same figures unsuppressed, for running the programme, never for a donor (it has no download).
The identified (case-level) export is a POST so it carries the CSRF token, is manager-only, and is
audited before a byte is sent. CSV files start with a UTF-8 byte order mark, so Excel reads "15–17"
and accented names as they are.
"""

import calendar
from datetime import date, timedelta
from itertools import chain

from flask import Response, g, request, stream_with_context
from flask_babel import gettext
from markupsafe import Markup

from models import audit, db, utcnow
from models.access import child_scope, sees_all_children
from models.exports import csv_lines, deidentified_rows, identified_children, identified_rows
from models.indicators import Period
from models.reporting import AGE_COLUMNS, SEX_COLUMNS, Report, Trend, build_report, build_trend
from server.web import bp
from server.web.charts import bar_svg
from server.web.csv_words import with_header_words
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
            errors[name] = [gettext("Give a date as YYYY-MM-DD.")]
    if not errors and parsed["end"] < parsed["start"]:
        errors["end"] = [gettext("The end must not be before the start.")]
    if not errors and parsed["end"] > today:
        errors["end"] = [gettext("The end cannot be after today: nothing is known about those days yet.")]
    if errors:
        return None, errors, values
    start, end = parsed["start"], parsed["end"]
    if whole_months:
        start = start.replace(day=1)
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
        if end > today:
            # The month in progress is left out until it is over: cut at today, it would change daily.
            end = today.replace(day=1) - timedelta(days=1)
        if end < start:
            return None, {"end": [gettext("Analysts see whole months, and this month is not over yet: "
                                          "choose an earlier month.")]}, values
        values = {"start": start.isoformat(), "end": end.isoformat()}
    return Period(start, end), {}, values


def _period_for_user(args):
    return parse_period(args, whole_months=g.user.role == "analyst")


def has_data(series) -> bool:
    """Anything to draw: a count above 0, or a hidden one ("<5" is one to four children)."""
    return any(value != 0 for _, values in series for value in values)


def charts(report: Report, trend: Trend) -> dict[str, Markup]:
    """SVG charts of the report's display cells: a suppressed cell is drawn as its text, no bar. A
    chart with nothing to draw is left out; the page says "no data for this period" in its place."""
    rows = {row.key: row for row in report.main if row.key in CHARTED}
    keys = [k for k in CHARTED if k in rows]
    by_district = {row.key: row for row in report.by_district}
    # name: (categories, series, title, width)
    wanted = {
        "by_sex": ([SHORT[k] for k in keys], [(label, [rows[k].cells[col] for k in keys])
                                              for col, label, _ in SEX_COLUMNS], "Children by indicator and sex", 720),
        "by_age": ([SHORT[k] for k in keys], [(label, [rows[k].cells[col] for k in keys])
                                              for col, label, _ in AGE_COLUMNS],
                   "Children by indicator and age band", 720),
        "by_district": (report.districts, [(by_district[k].label, [by_district[k].cells[d] for d in report.districts])
                                           for k in ("identified", "reunified", "school_or_training")
                                           if k in by_district],
                        "Children identified, reunified and in school or training, by district", 720),
        "closures": ([row.label for row in report.closures],
                     [("closures", [row.cells["total"] for row in report.closures])], "Cases closed by reason", 560),
        "trend": ([m.strftime("%b %Y") for m in trend.months],
                  [(row.label, [row.cells[m.strftime("%Y-%m")] for m in trend.months]) for row in trend.rows],
                  "Children per month, last 12 months", 720),
    }
    # bar_svg escapes every label itself.
    return {name: Markup(bar_svg(categories, series, title=title, width=width))
            for name, (categories, series, title, width) in wanted.items() if categories and has_data(series)}


@bp.get("/reports")
@login_required(*REPORT_READERS)
def reports():
    period, errors, values = _period_for_user(request.args)
    if errors:
        return render("reports.html", 400, title="Reports", report=None, errors=errors, values=values)
    # Raw counts are for managers who see every child anyway; an agency-limited one gets the donor tables.
    internal = sees_all_children(g.user) and request.args.get("view") == "internal"
    today = utcnow().date()
    report = build_report(period.start, period.end, today=today, suppressed=not internal)
    trend = build_trend(today, suppressed=not internal)
    return render("reports.html", title="Reports", report=report, trend=trend, charts=charts(report, trend),
                  errors={}, values=values, can_identify=g.user.role == "manager", internal=internal,
                  whole_months=g.user.role == "analyst")


def _filename(period: Period, kind: str) -> str:
    return f"homecoming-{kind}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"


BOM = "\ufeff"  # without it Excel reads UTF-8 as the local code page: "15â€“17", "Ã©"


def _with_bom(lines):
    yield BOM
    yield from lines


def _csv_response(lines, filename: str) -> Response:
    return Response(_with_bom(lines), mimetype="text/csv",
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
    body = list(csv_lines(with_header_words(deidentified_rows(report))))
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
    counted, closures, without_consent = identified_children(period, scope=child_scope(g.user), on=utcnow().date())
    audit("export.identified", actor=g.user, ip=request.remote_addr, children=counted,
          start=period.start.isoformat(), end=period.end.isoformat(), left_out_without_consent=without_consent)
    db.session.commit()
    lines = csv_lines(with_header_words(identified_rows(period, counted, closures)))
    # The header's words now, in the request's language: the user the locale is read from is not
    # loaded any more once the body streams.
    header = next(lines)
    return _csv_response(chain([header], stream_with_context(lines)), _filename(period, "cases"))
