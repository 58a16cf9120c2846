"""The field app (issue 9): an offline-first web app for caseworkers' phones, served at ``/field/``.

The shell holds no data (the children live sealed in the phone's IndexedDB and arrive by the sync
protocol), so every route here is public. The Service Worker's precache list and cache name are built
from the files on disk with a content hash: a change to any file makes a new worker, and nobody keeps
a list by hand.
"""

import hashlib
import json
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from models import districts, lifecycle, referrals, tracing, vocab

STATIC = Path(__file__).resolve().parent / "field" / "static"
SW_TEMPLATE = "sw.js"
# The worker may be updated at any time; the browser must ask before it reuses a copy. The shell is
# not personal, so it may be cached (no-store would defeat an offline app); the worker revalidates.
CACHE_CONTROL = "no-cache"
CSP = ("default-src 'self'; script-src 'self'; connect-src 'self'; worker-src 'self'; style-src 'self'; "
       "img-src 'self' data:; manifest-src 'self'; frame-ancestors 'none'; form-action 'none'; "
       "base-uri 'none'; object-src 'none'")

bp = Blueprint("field", __name__, url_prefix="/field")


def vocabulary() -> dict:
    """The choice lists the phone's forms need, from models/ (one source of truth)."""
    return {
        "sexes": list(vocab.SEXES),
        "risk_levels": list(vocab.RISK_LEVELS),
        "age_estimation_methods": list(vocab.AGE_ESTIMATION_METHODS),
        "how_left": list(vocab.HOW_LEFT),
        "consent_purposes": list(vocab.CONSENT_PURPOSES),
        "consent_givers": list(vocab.CONSENT_GIVERS),
        "assessment_kinds": list(vocab.ASSESSMENT_KINDS),
        "service_types": list(vocab.SERVICE_TYPES),
        "service_statuses": list(vocab.SERVICE_STATUSES),
        "followup_kinds": list(vocab.FOLLOWUP_KINDS),
        "followup_statuses": list(vocab.FOLLOWUP_STATUSES),
        "not_seen_reasons": list(vocab.NOT_SEEN_REASONS),
        "danger_not_seen_reasons": list(vocab.DANGER_NOT_SEEN_REASONS),
        "wellbeing": list(vocab.WELLBEING),
        "concerns": list(vocab.CONCERNS),
        "danger_concerns": list(vocab.DANGER_CONCERNS),
        "closure_reasons": list(vocab.CLOSURE_REASONS),
        "stages": list(lifecycle.STAGES),
        "phase_of": dict(lifecycle.PHASE_OF),
        # What a caseworker's device may ask for; the server still decides (invalid_transition).
        "caseworker_moves": {stage: [to for to in lifecycle.allowed_targets(stage)
                                     if (stage, to) not in lifecycle.MANAGER_ONLY]
                             for stage in lifecycle.STAGES},
        "districts": list(districts.allowed()),
        # Referrals and tracing (issues 13, 14): the steps from each status, the relationships and kinds.
        "referral_statuses": list(referrals.REFERRAL_STATUSES),
        "referral_next_steps": {status: list(steps) for status, steps in referrals.NEXT_STEPS.items()},
        "relationships": list(tracing.RELATIONSHIPS),
        "trace_kinds": list(tracing.TRACE_KINDS),
        "request_statuses": list(tracing.REQUEST_STATUSES),
    }


def shell_files() -> list[Path]:
    """Every file the app is made of, except the worker's own template."""
    return sorted(p for p in STATIC.rglob("*") if p.is_file() and p.relative_to(STATIC).as_posix() != SW_TEMPLATE
                  and not p.name.startswith("."))


def worker_source() -> str:
    """sw.js with its precache list and a cache name that changes whenever any file (or the vocabulary) does."""
    digest = hashlib.sha256()
    urls = ["./", "vocab.json"]
    for path in shell_files():
        name = path.relative_to(STATIC).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        if name != "index.html":
            urls.append(name)
    digest.update(json.dumps(vocabulary(), sort_keys=True).encode())
    template = (STATIC / SW_TEMPLATE).read_text(encoding="utf-8")
    return (template.replace("__CACHE_NAME__", json.dumps("homecoming-field-" + digest.hexdigest()[:16]))
            .replace("__PRECACHE__", json.dumps(urls)))


@cache
def _known_assets() -> frozenset:
    return frozenset(p.relative_to(STATIC).as_posix() for p in shell_files())


def _assets() -> frozenset:
    # Read the disk again in debug (files change while developing); cached otherwise.
    if current_app.debug:
        _known_assets.cache_clear()
    return _known_assets()


@bp.after_request
def field_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


@bp.get("/")
def shell():
    return send_from_directory(STATIC, "index.html", max_age=0)


@bp.get("/sw.js")
def service_worker():
    response = Response(worker_source(), mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/field/"
    return response


@bp.get("/vocab.json")
def vocab_json():
    return vocabulary()


@bp.get("/<path:asset>")
def static_file(asset: str):
    # Only the files of the app: never a path outside it, never the worker's template.
    if asset not in _assets():
        abort(404)
    response = send_from_directory(STATIC, asset, max_age=0)
    if asset.endswith(".webmanifest"):
        response.mimetype = "application/manifest+json"
    return response
