"""The districts a deployment works in: a child's ``district`` is one of them, not free text.

A typed district ("Kitgum", "kitgum ", "Kitgm") splits one place into several in every report by
district, and free text is one more field a careless hand fills with a name. So the list is set per
deployment (``HOMECOMING_DISTRICTS``, comma-separated) and installed by ``create_app`` through
``configure``, as the data key is (models.crypto): schemas are built at import time, the list is
read when a value is validated.

The default is the Acholi sub-region of northern Uganda, where the programme started: the five
districts the demo uses and the three others of the sub-region. A programme in West Nile, Karamoja,
South Sudan, the DRC or the CAR sets its own list.
"""

from marshmallow import ValidationError, fields

DEFAULT = ("Agago", "Amuru", "Gulu", "Kitgum", "Lamwo", "Nwoya", "Omoro", "Pader")
MAX_LENGTH = 64  # the column's length

_allowed: tuple[str, ...] = DEFAULT


def parse(raw: str | None) -> tuple[str, ...]:
    """The list a ``HOMECOMING_DISTRICTS`` value names (None or blank: the default). Raises ValueError."""
    if raw is None or not raw.strip():
        return DEFAULT
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    too_long = [name for name in names if len(name) > MAX_LENGTH]
    if too_long:
        raise ValueError(f"HOMECOMING_DISTRICTS: names are at most {MAX_LENGTH} characters: {', '.join(too_long)}")
    folded = [name.casefold() for name in names]
    if len(set(folded)) != len(folded):
        raise ValueError("HOMECOMING_DISTRICTS names a district twice (spelt with different capitals)")
    return names


def configure(names) -> None:
    """Install the districts of this deployment (a list, or the raw setting)."""
    global _allowed
    _allowed = parse(names) if names is None or isinstance(names, str) else parse(",".join(names))


def allowed() -> tuple[str, ...]:
    return _allowed


def canonical(value: str) -> str:
    """The district as the list spells it ("kitgum " is Kitgum); ValidationError listing the allowed
    ones otherwise."""
    wanted = value.strip().casefold()
    for name in _allowed:
        if name.casefold() == wanted:
            return name
    raise ValidationError(f"Must be one of the districts this programme works in: {', '.join(_allowed)}.")


class District(fields.String):
    """A district from the configured list, loaded as the list spells it."""

    def _deserialize(self, value, attr, data, **kwargs):
        return canonical(super()._deserialize(value, attr, data, **kwargs))
