"""The sync endpoint for field devices (DESIGN §5): ``POST /api/v1/sync/push``, ``GET /api/v1/sync/pull``.

Thin on purpose: authenticate the device, decode the body (gzip allowed, sizes capped), call
``sync.push.ingest`` / ``sync.pull.pull``, then commit and plan (models.unit_of_work).
"""

import gzip
import itertools
import json
import zlib

from flask import Blueprint, Response, current_app, g, request

from models import audit, db, utcnow
from models.unit_of_work import commit_and_plan
from server import metrics
from server.auth import bearer_token
from server.errors import ApiError
from server.whole_numbers import whole_number
from sync.devices import DeviceAuthError, authenticate_device
from sync.envelope import load_envelope
from sync.pull import decode_cursor, encode_changes, encode_cursor, pull
from sync.push import ingest

bp = Blueprint("sync", __name__, url_prefix="/api/v1/sync")

DEFAULT_PULL_LIMIT = 500
# Responses smaller than this are not worth compressing.
GZIP_MIN_BYTES = 512
STREAM_CHUNK = 64 * 1024


def current_device():
    try:
        device = authenticate_device(bearer_token(), utcnow())
    except DeviceAuthError as exc:
        if exc.revoked:
            raise ApiError(403, "device_revoked", exc.message, extra={"wipe": bool(exc.device.wipe)}) from None
        raise ApiError(401, "unauthorized", exc.message, headers={"WWW-Authenticate": "Bearer"}) from None
    g.device = device
    return device


def _max_body() -> int:
    return current_app.config.get("MAX_CONTENT_LENGTH") or 10 * 1024 * 1024


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes: a small gzip bomb must not become a huge allocation."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise ApiError(400, "malformed_json", "The body says Content-Encoding: gzip but is not gzip data.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, "payload_too_large",
                       f"The decompressed body is larger than the limit of {limit} bytes.", {"limit_bytes": limit})
    if not inflater.eof:
        raise ApiError(400, "malformed_json", "The gzip body is truncated.")
    return out


def json_body():
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"Send JSON with 'Content-Type: application/json' (got '{request.mimetype or 'none'}').")
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Encoding '{encoding}' is not supported; send gzip or nothing.")
    data = request.get_data(cache=False)  # werkzeug answers 413 above MAX_CONTENT_LENGTH
    if encoding == "gzip":
        data = _gunzip(data, _max_body())
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):  # ValueError covers numbers of more than 4,300 digits
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "The body is nested too deeply to be a push envelope.") from None


@bp.post("/push")
def push():
    device = current_device()
    body = json_body()
    envelope = load_envelope(body, current_app.config["SYNC_MAX_MUTATIONS"])
    today = utcnow().date()
    rules = current_app.config["RULES"]
    outcome = ingest(envelope, body["mutations"], device, today=today, rules=rules)
    commit_and_plan(outcome.child_ids, today=today, rules=rules)
    metrics.count_push(outcome.results, outcome.replayed)
    return {"batch_id": str(envelope["batch_id"]), "server_time": utcnow().isoformat(),
            "results": outcome.results}


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_PULL_LIMIT
    limit = whole_number(raw)
    if limit is None or limit < 1:
        raise ApiError(422, "validation_error", "limit must be a whole number of 1 or more (at most 18 digits).",
                       {"fields": {"limit": ["Must be a whole number of 1 or more (at most 18 digits)."]}})
    return min(limit, current_app.config["SYNC_PULL_MAX_LIMIT"])


@bp.get("/pull")
def pull_changes():
    device = current_device()
    secret = current_app.config["SECRET_KEY"]
    limit = _limit()
    cursor = request.args.get("cursor") or None
    after = decode_cursor(cursor, device, secret) if cursor else 0
    page = pull(device, after, limit, horizon=current_app.config["SYNC_RESYNC_BEFORE_SEQ"])
    tail = json.dumps({"cursor": encode_cursor(device, page.upper, secret), "has_more": page.has_more,
                       "server_time": utcnow().isoformat()})
    # One audit row per page naming every child and tracing request it carries, committed with the
    # device's last_seen_at before the page streams: one transaction a page, and a page cut short, or
    # lost with a crashed worker, is on the trail all the same (naming a few children the device may not
    # have received, never fewer). Streaming then needs neither the database nor this request.
    audit("sync.pull", actor=device.user_id, device=device.id, children=page.children, after=after,
          upper=page.upper, **({"requests": sorted(page.requests)} if page.requests else {}))
    db.session.commit()
    metrics.PULL_PAGES.inc()

    def body():
        yield b'{"changes":['
        yield from encode_changes(page.changes)
        yield b"]," + tail[1:].encode()

    chunks = _gzip_stream(_buffered(body())) if _accepts_gzip() else _buffered(body())
    # The first chunk is made here, where an error is still an error answer (a 503 + Retry-After for a
    # database gone away); once the answer streams, a failure can only cut it short (the device
    # retries the page).
    response = Response(itertools.chain([next(chunks)], chunks), mimetype="application/json")
    if _accepts_gzip():
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def _buffered(parts):
    buffer, size = [], 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= STREAM_CHUNK:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def _gzip_stream(chunks):
    deflater = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = deflater.compress(chunk)
        if out:
            yield out
    yield deflater.flush()


@bp.after_request
def compress(response):
    """gzip the non-streamed answers (push results, errors) when the device accepts it."""
    if (response.is_streamed or response.direct_passthrough or "Content-Encoding" in response.headers
            or not _accepts_gzip()):
        return response
    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES:
        return response
    response.set_data(gzip.compress(data, compresslevel=6))
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response
