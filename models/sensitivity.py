"""Sensitivity classes of DESIGN §3, carried on every column as ``info["sensitivity"]``.

- ``aggregate``: safe in de-identified reports.
- ``personal``: identifies a child or family; need-to-know, encrypted at rest.
- ``restricted``: the CAAFAG profile; managers only, never sent to devices, never exported by default,
  every read audited, encrypted at rest.
"""

from sqlalchemy import inspect

AGGREGATE = "aggregate"
PERSONAL = "personal"
RESTRICTED = "restricted"
CLASSES = (AGGREGATE, PERSONAL, RESTRICTED)


def aggregate(**kw):
    return {"sensitivity": AGGREGATE, **kw}


def personal(**kw):
    return {"sensitivity": PERSONAL, **kw}


def restricted(**kw):
    return {"sensitivity": RESTRICTED, **kw}


def sensitivity_of(model, field: str) -> str:
    return inspect(model).columns[field].info["sensitivity"]


def fields_of(model, *classes: str) -> list[str]:
    """Column keys of ``model`` whose sensitivity is one of ``classes``, in table order."""
    return [c.key for c in inspect(model).column_attrs if c.columns[0].info.get("sensitivity") in classes]
