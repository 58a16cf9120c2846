"""The header row of the CSV exports in the reader's language: models/exports.py names its columns
with identifiers (``case_code``), the file a person opens says "Case code" (or "Code du dossier")."""

from collections.abc import Iterable, Iterator

from flask_babel import lazy_gettext as _l

HEADER_WORDS = {
    "period_start": _l("Period start"), "period_end": _l("Period end"), "table": _l("Table"),
    "indicator": _l("Indicator"), "breakdown": _l("Breakdown"), "value": _l("Value"),
    "case_code": _l("Case code"), "given_name": _l("Given name"), "family_name": _l("Family name"),
    "sex": _l("Sex"), "birth_year": _l("Year of birth"), "age_band": _l("Age band"), "district": _l("District"),
    "child_mother": _l("Child mother"), "phase": _l("Phase"), "stage": _l("Stage"),
    "stage_since": _l("In this stage since"), "identified_on": _l("Date released or identified"),
    "closure_reason": _l("Closure reason"), "identified": _l("Identified"), "registered": _l("Registered"),
    "reunified": _l("Reunified"), "school_or_training": _l("In school or training"),
    "rerecruited_or_missing": _l("Re-recruited or missing"), "closed": _l("Closed"),
}


def with_header_words(rows: Iterable[Iterable]) -> Iterator[tuple]:
    """The rows, the first (the header) put in words; an unknown column keeps its identifier."""
    rows = iter(rows)
    header = next(rows, None)
    if header is None:
        return
    yield tuple(str(HEADER_WORDS.get(name, name)) for name in header)
    yield from rows
