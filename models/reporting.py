"""The indicator report for a period, as tables of display cells with small cells suppressed.

``build_report`` runs the queries of ``models.indicators`` once and shapes their cubes into the three
tables the page, the charts and the de-identified CSV all read, so what is exported is exactly what is
shown. Raw counts leave this module only in a manager's internal view (``suppressed=False``): managers
see every child by name anyway, so the "<5" that protects a donor report only hides their own figures.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from models.age_bands import AGE_BAND_LABELS, AGE_BANDS
from models.disclosure import rate, suppress, suppress_partition, suppress_subset
from models.indicators import (
    CHILD_INDICATORS,
    Period,
    closures_by_reason,
    count_children,
    followups_on_time,
    monthly_counts,
    referrals_by_service_and_outcome,
)
from models.referrals import REFERRAL_STATUSES
from models.vocab import CLOSURE_REASONS, SERVICE_TYPES, SEXES

# The breakdown columns, in order: (key, label, group). Keys in one group partition the total.
SEX_COLUMNS = tuple((f"sex:{s}", s.capitalize() if s != "unknown" else "Sex unknown", "sex") for s in SEXES)
AGE_COLUMNS = tuple((f"age:{b}", "Age unknown" if b == "unknown" else AGE_BAND_LABELS[b].capitalize(), "age")
                    for b in AGE_BANDS)
COLUMNS = (
    ("total", "Total", None),
    *SEX_COLUMNS,
    *AGE_COLUMNS,
    ("girls", "Girls (female, under 18)", None),
    ("child_mothers", "Child mothers", None),
)
UNKNOWN_DISTRICT = "District unknown"
# The referral table: service types down, where the referrals stand across (issue 13).
REFERRAL_COLUMNS = (("total", "Total"), *((s, s.replace("_", " ").capitalize()) for s in REFERRAL_STATUSES))


@dataclass
class Row:
    key: str
    label: str
    cells: dict  # column key -> display value (int, "<5", "x", or a rate text)


@dataclass
class Report:
    period: Period
    suppressed: bool = True
    main: list[Row] = field(default_factory=list)  # indicators x breakdown columns
    closures: list[Row] = field(default_factory=list)  # closure reasons x breakdown columns
    districts: list[str] = field(default_factory=list)
    by_district: list[Row] = field(default_factory=list)  # indicators x districts
    referrals: list[Row] = field(default_factory=list)  # service types x referral statuses

    @property
    def columns(self):
        return COLUMNS

    @property
    def referral_columns(self):
        return REFERRAL_COLUMNS


def margins(rows: list[dict], value: str = "n") -> dict[str, int]:
    """Raw totals per breakdown column from cube rows."""
    out = Counter({key: 0 for key, _, _ in COLUMNS})
    for row in rows:
        n = row[value]
        out["total"] += n
        out[f"sex:{row['sex'] if row['sex'] in SEXES else 'unknown'}"] += n
        out[f"age:{row['age_band']}"] += n
        if row["sex"] == "female" and row["age_band"] in ("under_15", "15_17"):
            out["girls"] += n
        if row["child_mother"]:
            out["child_mothers"] += n
    return dict(out)


def display_cells(raw: dict[str, int], suppressed: bool = True) -> dict:
    """Suppress one row of breakdown cells: partitions get secondary suppression, subsets don't."""
    if not suppressed:
        return dict(raw)
    cells = {"total": suppress(raw["total"])}
    for group in ("sex", "age"):
        keys = [key for key, _, g in COLUMNS if g == group]
        cells.update(suppress_partition({key: raw[key] for key in keys}))
    cells["girls"] = suppress_subset(raw["girls"], raw["sex:female"], cells["sex:female"])
    cells["child_mothers"] = suppress_subset(raw["child_mothers"], raw["total"], cells["total"])
    return cells


def by_district(rows: list[dict], value: str = "n") -> Counter:
    out = Counter()
    for row in rows:
        out[row["district"] or UNKNOWN_DISTRICT] += row[value]
    return out


def build_report(start: date, end: date, today: date | None = None, *, suppressed: bool = True) -> Report:
    period = Period(start, end)
    report = Report(period, suppressed)
    partition = suppress_partition if suppressed else dict

    def cells(raw):
        return display_cells(raw, suppressed)

    district_counts: dict[str, Counter] = {}
    labels: dict[str, str] = {}

    for key, (label, _) in CHILD_INDICATORS.items():
        rows = count_children(key, period)
        report.main.append(Row(key, label, cells(margins(rows))))
        district_counts[key], labels[key] = by_district(rows), label

    followups = followups_on_time(period, today=today)
    due_cells = cells(margins(followups, "due"))
    on_time_cells = cells(margins(followups, "on_time"))
    report.main.append(Row("followups_due", "Follow-ups due", due_cells))
    report.main.append(Row("followups_on_time", "Follow-ups done on time", on_time_cells))
    report.main.append(Row("followups_on_time_rate", "Follow-ups done on time (%)",
                           {k: rate(on_time_cells[k], due_cells[k]) for k in due_cells}))
    district_counts["followups_due"], labels["followups_due"] = by_district(followups, "due"), "Follow-ups due"
    district_counts["followups_on_time"] = by_district(followups, "on_time")
    labels["followups_on_time"] = "Follow-ups done on time"

    closures = closures_by_reason(period)
    report.main.append(Row("closed", "Cases closed", cells(margins(closures))))
    district_counts["closed"], labels["closed"] = by_district(closures), "Cases closed"
    reasons = list(CLOSURE_REASONS) + sorted({r["reason"] for r in closures if r["reason"] not in CLOSURE_REASONS},
                                             key=str)
    per_reason = {reason: margins([r for r in closures if r["reason"] == reason]) for reason in reasons}
    # The reasons partition the closures: their totals get secondary suppression down the column.
    reason_totals = partition({reason: raw["total"] for reason, raw in per_reason.items()})
    for reason, raw in per_reason.items():
        row = cells(raw)
        row["total"] = reason_totals[reason]
        report.closures.append(Row(str(reason), str(reason or "not recorded").replace("_", " "), row))

    names = sorted({d for counts in district_counts.values() for d in counts},
                   key=lambda d: (d == UNKNOWN_DISTRICT, d))
    report.districts = names
    columns = {key: partition({d: counts.get(d, 0) for d in names})
               for key, counts in district_counts.items()}
    for key in district_counts:
        report.by_district.append(Row(key, labels[key], columns[key]))
    report.referrals = referral_rows(period)
    return report


def referral_rows(period: Period) -> list[Row]:
    """Referrals by service type and outcome; the statuses partition each service's total."""
    counts = {(r["service_type"], r["status"]): r["n"] for r in referrals_by_service_and_outcome(period)}
    rows = []
    for service in SERVICE_TYPES:
        raw = {status: counts.get((service, status), 0) for status in REFERRAL_STATUSES}
        rows.append(Row(service, service.replace("_", " ").capitalize(),
                        {"total": suppress(sum(raw.values())), **suppress_partition(raw)}))
    return rows


# The monthly trend: the child counts a programme watches month by month.
TREND_INDICATORS = ("identified", "registered", "reunified", "closed")


@dataclass
class Trend:
    months: list[date]  # the first day of each month, oldest first
    rows: list[Row]  # indicator x month ("YYYY-MM")


def build_trend(today: date, *, months: int = 12, suppressed: bool = True) -> Trend:
    """The last ``months`` calendar months up to today (this month so far included): one grouped query
    per indicator. Suppressed, each indicator's months are a partition of the period's total."""
    first = _month_start(today, months - 1)
    period = Period(first, today)
    firsts = [_month_start(today, months - 1 - i) for i in range(months)]
    keys = [m.strftime("%Y-%m") for m in firsts]
    labels = {**{k: label for k, (label, _) in CHILD_INDICATORS.items()}, "closed": "Cases closed"}
    partition = suppress_partition if suppressed else dict
    rows = []
    for key in TREND_INDICATORS:
        counts = monthly_counts(key, period)
        rows.append(Row(key, labels[key], partition({k: counts.get(k, 0) for k in keys})))
    return Trend(firsts, rows)


def _month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)
