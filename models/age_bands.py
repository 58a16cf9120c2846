"""Age bands of DESIGN §6 (under 15, 15–17, 18 and over), from the child's birth year.

Only the birth year is kept in clear, so a band is computed from ``reference_year - birth_year``: the
age the child turns in that year. Shared by the web filters, the dashboard and the reports so every
page counts a child in the same band.
"""

from sqlalchemy import and_

from models.children import Child

AGE_BANDS = ("under_15", "15_17", "18_plus", "unknown")
AGE_BAND_LABELS = {"under_15": "under 15", "15_17": "15–17", "18_plus": "18 and over", "unknown": "unknown"}


def age_band_of(birth_year: int | None, reference_year: int) -> str:
    if birth_year is None:
        return "unknown"
    age = reference_year - birth_year
    if age < 15:
        return "under_15"
    if age < 18:
        return "15_17"
    return "18_plus"


def age_band_condition(band: str, reference_year: int):
    """A SQL condition on ``Child.birth_year`` selecting the children in ``band``."""
    if band == "under_15":
        return Child.birth_year > reference_year - 15
    if band == "15_17":
        return and_(Child.birth_year <= reference_year - 15, Child.birth_year > reference_year - 18)
    if band == "18_plus":
        return Child.birth_year <= reference_year - 18
    if band == "unknown":
        return Child.birth_year.is_(None)
    raise ValueError(f"age band must be one of {', '.join(AGE_BANDS)}")
