"""Charts drawn on the server as SVG: no JavaScript, no CDN, readable with a screen reader.

Each function takes plain numbers and labels and returns an SVG string ready to put in a page with
``|safe``: every piece of text in it is escaped here. A value that is not a number (the reports pass
``"<5"`` for a suppressed cell) is drawn as its text without a bar, so a chart never reveals what a
table hides.
"""

from collections.abc import Iterable, Sequence
from html import escape
from typing import NamedTuple

# Colours with enough contrast against white and against each other for the common colour-blindnesses
# (Okabe–Ito palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = 'font-family="sans-serif" font-size="12"'


class FunnelRow(NamedTuple):
    label: str
    count: object  # an int, or display text such as "<5"
    href: str | None = None
    group: str | None = None  # the phase, drawn as a band label and colour


def _text(value) -> str:
    return escape(str(value), quote=True)


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _open(width: int, height: int, title: str, desc: str | None) -> list[str]:
    label = _text(title)
    parts = [
        # No style attribute: the page's Content-Security-Policy allows only the stylesheet.
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{label}" class="chart">',
        f"<title>{label}</title>",
    ]
    if desc:
        parts.append(f"<desc>{_text(desc)}</desc>")
    return parts


def _link(href: str | None, inner: str) -> str:
    if not href:
        return inner
    return f'<a href="{_text(href)}">{inner}</a>'


def funnel_svg(rows: Iterable[Sequence], *, title: str = "Children per phase and stage",
               width: int = 560, row_height: int = 26) -> str:
    """Horizontal bars, one per stage, longest first in the order given, grouped by phase.

    ``rows`` are ``FunnelRow`` or tuples ``(label, count[, href[, group]])``. With an ``href`` the bar
    and its number link to the list the number counts.
    """
    rows = [r if isinstance(r, FunnelRow) else FunnelRow(*r) for r in rows]
    label_w, group_w, value_w = 130, 110 if any(r.group for r in rows) else 0, 60
    bar_w = max(60, width - label_w - group_w - value_w)
    top = 8
    height = top * 2 + row_height * max(1, len(rows))
    numbers = [_number(r.count) or 0 for r in rows]
    biggest = max(numbers, default=0) or 1
    groups = list(dict.fromkeys(r.group for r in rows if r.group))
    desc = "; ".join(f"{r.label}: {r.count}" for r in rows) or "No data."
    parts = _open(width, height, title, desc)
    parts.append(f"<g {FONT}>")
    previous_group = None
    for i, (row, number) in enumerate(zip(rows, numbers, strict=True)):
        y = top + i * row_height
        colour = PALETTE[groups.index(row.group) % len(PALETTE)] if row.group else PALETTE[0]
        if row.group and row.group != previous_group:
            parts.append(f'<text x="0" y="{y + row_height * 0.65:.0f}" font-weight="bold">'
                         f"{_text(row.group.replace('_', ' '))}</text>")
        previous_group = row.group
        parts.append(f'<text x="{group_w + label_w - 6}" y="{y + row_height * 0.65:.0f}" '
                     f'text-anchor="end">{_text(row.label.replace("_", " "))}</text>')
        length = bar_w * number / biggest
        # Centre the bar on the axis so the rows read as a funnel.
        x = group_w + label_w + (bar_w - length) / 2
        bar = (f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" '
               f'fill="{colour}"><title>{_text(row.label)}: {_text(row.count)}</title></rect>')
        value = (f'<text x="{group_w + label_w + bar_w + 6}" y="{y + row_height * 0.65:.0f}">'
                 f"{_text(row.count)}</text>")
        parts.append(_link(row.href, bar + value))
    parts.append("</g></svg>")
    return "".join(parts)


def bar_svg(categories: Sequence[str], series: Sequence[tuple[str, Sequence]], *, title: str,
            stacked: bool = False, width: int = 560, height: int = 240,
            hrefs: Sequence[str | None] | None = None) -> str:
    """Vertical bars: one group (or one stack) per category, one bar (or segment) per series.

    ``series`` is ``[(name, values)]`` with one value per category. Non-numeric values (``"<5"``) draw
    no bar; in a grouped chart their text is written where the bar would stand. ``hrefs`` (one per
    category) make the category labels links.
    """
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(categories)} categories")
    left, right, top, bottom = 44, 8, 10, 46 + 18 * (1 if len(series) > 1 else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    if stacked:
        heights = [sum(_number(values[i]) or 0 for _, values in series) for i in range(len(categories))]
    else:
        heights = [_number(v) or 0 for _, values in series for v in values]
    biggest = max(heights, default=0) or 1
    desc_parts = []
    for i, category in enumerate(categories):
        desc_parts.append(f"{category}: " + ", ".join(f"{name} {values[i]}" for name, values in series))
    parts = _open(width, height, title, "; ".join(desc_parts) or "No data.")
    parts.append(f"<g {FONT}>")
    # Axis and a top gridline labelled with the scale.
    base_y = top + plot_h
    parts.append(f'<line x1="{left}" y1="{base_y}" x2="{left + plot_w}" y2="{base_y}" stroke="#555"/>')
    if any(heights):  # with nothing to draw there is no scale to label
        parts.append(f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{_text(_fmt(biggest))}</text>')
    parts.append(f'<text x="{left - 4}" y="{base_y}" text-anchor="end">0</text>')
    slot = plot_w / max(1, len(categories))
    bars_in_slot = 1 if stacked else max(1, len(series))
    bar_w = max(2.0, slot * 0.8 / bars_in_slot)
    for i, category in enumerate(categories):
        x0 = left + i * slot + slot * 0.1
        stack_y = base_y
        for j, (name, values) in enumerate(series):
            value = values[i]
            number = _number(value)
            colour = PALETTE[j % len(PALETTE)]
            tip = f"<title>{_text(category)}, {_text(name)}: {_text(value)}</title>"
            if stacked:
                if number:
                    h = plot_h * number / biggest
                    stack_y -= h
                    parts.append(f'<rect x="{x0:.1f}" y="{stack_y:.1f}" width="{bar_w:.1f}" '
                                 f'height="{h:.1f}" fill="{colour}">{tip}</rect>')
                continue
            x = x0 + j * bar_w
            h = plot_h * (number or 0) / biggest
            if number:
                parts.append(f'<rect x="{x:.1f}" y="{base_y - h:.1f}" width="{bar_w:.1f}" '
                             f'height="{h:.1f}" fill="{colour}">{tip}</rect>')
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base_y - h - 3:.1f}" text-anchor="middle" '
                         f'font-size="10">{_text(value)}</text>')
        if stacked:
            total_text = _stack_total(series, i)
            parts.append(f'<text x="{x0 + bar_w / 2:.1f}" y="{stack_y - 3:.1f}" text-anchor="middle" '
                         f'font-size="10">{_text(total_text)}</text>')
        label = (f'<text x="{left + i * slot + slot / 2:.1f}" y="{base_y + 16}" text-anchor="middle">'
                 f"{_text(str(category).replace('_', ' '))}</text>")
        parts.append(_link(hrefs[i] if hrefs else None, label))
    if len(series) > 1:
        x = left
        y = height - 8
        for j, (name, _) in enumerate(series):
            parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>')
            parts.append(f'<text x="{x + 14}" y="{y}">{_text(name)}</text>')
            x += 24 + 7 * len(str(name))
    parts.append("</g></svg>")
    return "".join(parts)


def _stack_total(series, i) -> str:
    """The label on top of a stack; if any segment is suppressed the total is shown as text only
    when the numbers alone add up to it, else each suppressed part is named."""
    numbers = [_number(values[i]) for _, values in series]
    hidden = [values[i] for (_, values), n in zip(series, numbers, strict=True) if n is None]
    shown = _fmt(sum(n for n in numbers if n is not None))
    return shown if not hidden else f"{shown} + {' + '.join(str(h) for h in hidden)}"


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:.1f}"
