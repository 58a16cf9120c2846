"""Small-cell suppression for de-identified figures (DESIGN §6: cells under 5 are shown as "<5").

The rule, applied on every page and in every de-identified export:

- a count of 1 to 4 is shown as ``"<5"`` (primary suppression);
- 0 is shown as 0: that nobody in a group was counted identifies no one, and hiding zeros would make
  the tables unreadable;
- where the cells of a breakdown add up to a total that is shown (the sexes, the age bands, the
  districts), a single hidden cell could be worked out by subtraction, so the next smallest shown cell
  is hidden too, as ``"x"`` (secondary suppression);
- a cell that counts part of another shown cell (girls of the females, child mothers of all) is hidden
  as ``"x"`` when the rest (the other cell minus it) is 1 to 4, which subtraction would reveal.

Rates are shown only when both their numerator and denominator are shown.
"""

THRESHOLD = 5
SMALL = "<5"
HIDDEN = "x"  # hidden only so that a "<5" next to it cannot be worked out from the total


def suppress(n: int):
    """One cell: 0 stays 0, 1–4 become "<5", the rest stay as they are."""
    return SMALL if 0 < n < THRESHOLD else n


def suppress_partition(counts: dict) -> dict:
    """Cells that add up to a shown total: primary suppression, then hide the next smallest shown
    non-zero cell whenever exactly one cell was hidden."""
    shown = {key: suppress(n) for key, n in counts.items()}
    hidden = [key for key, value in shown.items() if not isinstance(value, int)]
    if len(hidden) == 1:
        candidates = [(n, i) for i, (key, n) in enumerate(counts.items()) if isinstance(shown[key], int) and n > 0]
        if candidates:
            _, index = min(candidates)
            key = list(counts)[index]
            shown[key] = HIDDEN
    return shown


def suppress_subset(n: int, whole: int, whole_shown) -> int | str:
    """A cell counting part of another cell (``whole`` children, shown as ``whole_shown``)."""
    shown = suppress(n)
    if is_shown(shown) and is_shown(whole_shown) and 0 < whole - n < THRESHOLD:
        return HIDDEN
    return shown


def is_shown(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rate(numerator, denominator) -> str:
    """A percentage, or "—" when either part is hidden or there is nothing to divide by."""
    if not (is_shown(numerator) and is_shown(denominator)) or denominator == 0:
        return "—"
    return f"{round(100 * numerator / denominator)}%"
