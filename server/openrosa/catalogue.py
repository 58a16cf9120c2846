"""The forms served to OpenRosa devices: every XLSForm in the shipped folder (and in
``ODK_FORMS_DIR`` when set), converted with pyxform once per file version, with what the mapping onto
the model needs (docs/odk.md, "Mapping rules").

A form whose groups name fields the model does not have is refused when the catalogue is built, so a
programme learns of a typo from the server's log and the form list, not from refused visits weeks later.
"""

import hashlib
import logging
import zipfile
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path

from defusedxml import ElementTree
from flask import current_app

from models.children import Child
from models.schemas import FIELD_SCHEMAS
from models.sensitivity import RESTRICTED, fields_of
from server.openrosa.shipped_forms import FORMS_DIR, SERVER_KEY
from server.openrosa.xml import local

log = logging.getLogger(__name__)

# Entities a form may write. An alert is raised by the server, never filled in.
FORM_ENTITIES = ("child", "consent", "assessment", "service", "followup", "stage_transition")
CASELOAD_FILE = "caseload.csv"


class FormProblem(Exception):
    """An XLSForm that cannot be served, with a message for the person who wrote it."""


@dataclass(frozen=True)
class Group:
    """One group of a form: one record of ``entity``."""

    name: str
    entity: str
    fields: tuple[str, ...]
    calculated: frozenset = frozenset()  # fields the form computes: they alone do not make a record


@dataclass(frozen=True)
class Form:
    form_id: str
    version: str
    title: str
    xform: bytes
    groups: tuple[Group, ...]
    media: tuple[str, ...] = ()
    encrypted: bool = False
    restricted: frozenset = field(default_factory=frozenset)  # restricted fields it collects
    # A programme's own form keeps its questions outside the groups with the child; a shipped form's
    # are only its own helpers (the registration's checklist of consents).
    shipped: bool = False

    @property
    def md5(self) -> str:
        return hashlib.md5(self.xform).hexdigest()

    @property
    def picks_child(self) -> bool:
        """A form with ``case_code`` at its top writes records of a child in the caseload."""
        return b"/data/case_code" in self.xform


_cache: dict = {}


def forms() -> dict[str, Form]:
    """formID -> Form, for every form file found. A file that cannot be served is left out, and logged
    once per version of the file."""
    key = current_app.extensions.get("odk_public_key")
    found = {}
    for path in _form_files():
        form = _load(path, key)
        if isinstance(form, Form):
            found[form.form_id] = replace(form, shipped=path.parent == FORMS_DIR)
    return found


def _form_files() -> list[Path]:
    folders = [FORMS_DIR]
    extra = current_app.config.get("ODK_FORMS_DIR")
    if extra:
        folders.append(Path(extra))
    return sorted(path for folder in folders for path in folder.glob("*.xlsx") if not path.name.startswith("~"))


def _load(path: Path, public_key: str | None) -> Form | FormProblem:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, public_key)
    if key not in _cache:
        try:
            _cache[key] = convert(path, public_key)
        except FormProblem as problem:
            log.error("OpenRosa form %s is not served: %s", path.name, problem)
            _cache[key] = problem
    return _cache[key]


def convert(path: Path, public_key: str | None = None) -> Form:
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert as xls2xform

    try:
        xform = xls2xform(xlsform=_with_server_key(path, public_key), warnings=[], file_type=".xlsx").xform.encode()
    except (PyXFormError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise FormProblem(f"pyxform could not convert it: {exc}") from None
    return describe(xform)


def _with_server_key(path: Path, public_key: str | None) -> BytesIO:
    """The spreadsheet, its ``public_key`` setting of "server" replaced by the server's public key."""
    from openpyxl import load_workbook

    data = path.read_bytes()
    book = load_workbook(BytesIO(data))
    settings = book["settings"] if "settings" in book.sheetnames else None
    rows = list(settings.iter_rows()) if settings is not None else []
    header = [cell.value for cell in rows[0]] if rows else []
    if "public_key" not in header or len(rows) < 2 or rows[1][header.index("public_key")].value != SERVER_KEY:
        return BytesIO(data)
    if not public_key:
        raise FormProblem("it is encrypted with the server's key, and none is set: set "
                          "HOMECOMING_ODK_PRIVATE_KEY_FILE (docs/odk.md)")
    rows[1][header.index("public_key")].value = public_key
    out = BytesIO()
    book.save(out)
    out.seek(0)
    return out


def describe(xform: bytes) -> Form:
    """What the mapping needs from a converted XForm: its id, version, groups and media."""
    root = ElementTree.fromstring(xform)
    model = next(e for e in root.iter() if local(e.tag) == "model")
    instance = next(e for e in model if local(e.tag) == "instance")
    data = list(instance)[0]
    form_id, version = data.get("id"), data.get("version") or ""
    title = next((e.text for e in root.iter() if local(e.tag) == "title"), form_id)
    calculated = {bind.get("nodeset") for bind in model.iter() if local(bind.tag) == "bind" and bind.get("calculate")}
    groups = []
    for element in data:
        name = local(element.tag)
        if name in ("meta", "case_code") or not len(element):
            continue
        entity = name.split("__", 1)[0]
        if entity not in FORM_ENTITIES:
            continue  # a group of the programme's own: kept in the submission log only
        names = tuple(local(leaf.tag) for leaf in element)
        unknown = sorted(set(names) - set(FIELD_SCHEMAS[entity]._declared_fields) - {"child_id"})
        if unknown:
            raise FormProblem(f"the group '{name}' records a {entity}, which has no field "
                              f"{', '.join(repr(n) for n in unknown)} (see docs/odk.md, mapping rules)")
        groups.append(Group(name, entity, names,
                            frozenset(n for n in names if f"/data/{name}/{n}" in calculated)))
    if not groups:
        raise FormProblem("it has no group named after a record (child, consent, assessment, service, "
                          "followup, stage_transition)")
    restricted = frozenset(n for g in groups if g.entity == "child" for n in g.fields
                           if n in fields_of(Child, RESTRICTED))
    encrypted = any(local(e.tag) == "submission" and e.get("base64RsaPublicKey") for e in model.iter())
    if restricted and not encrypted:
        raise FormProblem("it collects restricted fields (" + ", ".join(sorted(restricted)) + ") but is not "
                          "encrypted: set public_key in its settings sheet")
    media = (CASELOAD_FILE,) if f"jr://file-csv/{CASELOAD_FILE}".encode() in xform else ()
    if form_id is None or not form_id.replace("_", "").replace("-", "").isalnum() or len(form_id) > 64:
        raise FormProblem(f"its form_id {form_id!r} must be 1 to 64 letters, digits, '_' or '-'")
    return Form(form_id, version, title, xform, tuple(groups), media, encrypted, restricted)
