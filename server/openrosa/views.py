"""The OpenRosa endpoints: form list, form, manifest, media file, submission. Thin: authenticate,
hand over, answer in OpenRosa's XML with its headers."""

import hashlib

from flask import Blueprint, Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from models.base import db, utcnow
from models.unit_of_work import commit_and_plan
from server.openrosa.caseload import caseload_csv, fields_problems
from server.openrosa.catalogue import CASELOAD_FILE, forms
from server.openrosa.credentials import authenticate_odk
from server.openrosa.encrypted import load_private_key, public_key_b64
from server.openrosa.errors import OpenRosaError
from server.openrosa.submission import receive
from server.openrosa.xml import element, openrosa_response
from sync.devices import DeviceAuthError

bp = Blueprint("openrosa", __name__, url_prefix="/odk")
XML = "text/xml; charset=utf-8"
SUBMISSION_FILE = "xml_submission_file"


def register(app) -> None:
    """Refuse to start with a caseload setting that would put restricted fields on phones."""
    problems = fields_problems(app.config["ODK_CASELOAD_FIELDS"])
    if problems:
        raise ValueError("Invalid settings: " + "; ".join(problems))
    if app.config.get("ODK_PRIVATE_KEY"):
        private_key = load_private_key(app.config["ODK_PRIVATE_KEY"])
        app.extensions["odk_private_key"] = private_key
        app.extensions["odk_public_key"] = public_key_b64(private_key)
    app.register_blueprint(bp)


def current_device():
    try:
        device = authenticate_odk(request.headers.get("Authorization"), utcnow(), request.remote_addr)
    except DeviceAuthError as exc:
        db.session.commit()  # the throttle's count of this failure (the error handler rolls back)
        if exc.revoked:
            raise OpenRosaError(403, exc.message) from None
        raise OpenRosaError(401, exc.message, {"WWW-Authenticate": 'Basic realm="Homecoming", charset="UTF-8"'}) \
            from None
    g.device = device
    db.session.commit()  # last_seen_at
    return device


def _xml(body: str, status: int = 200) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, status=status, content_type=XML)


def _form(form_id: str):
    form = forms().get(form_id)
    if form is None:
        raise OpenRosaError(404, f"This server has no form '{form_id}'. Get blank forms again.")
    return form


@bp.get("/formList")
def form_list():
    current_device()
    wanted = request.args.get("formID")
    items = []
    for form in forms().values():
        if wanted and form.form_id != wanted:
            continue
        parts = [element("formID", form.form_id), element("name", form.title), element("version", form.version),
                 element("hash", f"md5:{form.md5}"),
                 element("downloadUrl", url_for(".form_xml", form_id=form.form_id, _external=True))]
        if form.media:
            parts.append(element("manifestUrl", url_for(".manifest", form_id=form.form_id, _external=True)))
        items.append("<xform>" + "".join(parts) + "</xform>")
    return _xml('<xforms xmlns="http://openrosa.org/xforms/xformsList">' + "".join(items) + "</xforms>")


@bp.get("/forms/<form_id>.xml")
def form_xml(form_id):
    current_device()
    return Response(_form(form_id).xform, content_type=XML)


@bp.get("/forms/<form_id>/manifest")
def manifest(form_id):
    device = current_device()
    form = _form(form_id)
    files = []
    for name in form.media:
        data = _media(device, name, audited=False)
        files.append("<mediaFile>" + element("filename", name) + element("hash", f"md5:{_md5(data)}")
                     + element("downloadUrl", url_for(".media_file", form_id=form_id, filename=name,
                                                      _external=True)) + "</mediaFile>")
    return _xml('<manifest xmlns="http://openrosa.org/xforms/xformsManifest">' + "".join(files) + "</manifest>")


@bp.get("/forms/<form_id>/media/<filename>")
def media_file(form_id, filename):
    device = current_device()
    if filename not in _form(form_id).media:
        raise OpenRosaError(404, f"The form '{form_id}' has no file '{filename}'.")
    data = _media(device, filename, audited=True)
    db.session.commit()  # the audit row of what the phone now holds
    return Response(data, content_type="text/csv; charset=utf-8")


def _media(device, name: str, *, audited: bool) -> bytes:
    assert name == CASELOAD_FILE  # the only media file forms can name (catalogue.describe)
    return caseload_csv(device, current_app.config["ODK_CASELOAD_FIELDS"], audited=audited)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@bp.route("/submission", methods=["HEAD", "POST"])
def submission():
    device = current_device()
    if request.method == "HEAD":
        return Response(status=204)
    xml_part = request.files.get(SUBMISSION_FILE)
    if xml_part is None:
        raise OpenRosaError(400, f"Send the form as multipart/form-data with a part named '{SUBMISSION_FILE}'.")
    parts = [part for key, part in request.files.items(multi=True) if key != SUBMISSION_FILE]
    today = utcnow().date()
    rules = current_app.config["RULES"]
    received = receive(xml_part.read(), parts, device, today=today, rules=rules)
    commit_and_plan(received.child_ids, today=today, rules=rules)
    return _xml(openrosa_response(received.message), 201)


@bp.errorhandler(OpenRosaError)
def openrosa_error(error: OpenRosaError):
    db.session.rollback()
    response = _xml(openrosa_response(error.message, "error"), error.status)
    response.headers.update(error.headers)
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    db.session.rollback()
    if error.code == 413:
        message = (f"The form and its files are larger than this server accepts "
                   f"({current_app.config['MAX_CONTENT_LENGTH']} bytes). Send the files in several parts.")
    else:
        message = error.description or error.name
    return _xml(openrosa_response(message, "error"), error.code or 400)


@bp.after_request
def openrosa_headers(response):
    response.headers["X-OpenRosa-Version"] = "1.0"
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(current_app.config["MAX_CONTENT_LENGTH"])
    response.headers["Date"] = http_date(utcnow())
    return response
