"""Whole numbers sent as text (query strings, headers, form fields).

``str.isdigit`` is true for "²" and "١٢", which ``int`` then refuses or reads in another script, and
``int`` refuses more than 4,300 digits: a check that lets those through turns bad input into a 500.
"""

MAX_DIGITS = 18  # fits a 64-bit database integer


def whole_number(text: str | None) -> int | None:
    """The number ``text`` spells in ASCII digits (at most 18 of them), or None."""
    if not text or len(text) > MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
