"""Logs: plain text by default, JSON lines with ``HOMECOMING_LOG_FORMAT=json``; a request id on every
line written while a request is answered, and one line per request.

The request id is the caller's ``X-Request-Id`` when it looks like an id (nginx sets one, see
deploy/nginx/homecoming.conf), else a new one; the response carries it back so an operator can find a
device's failed sync in the logs. The per-request line names the route's rule, never the path or the
query string: a search URL carries a child's name, a path a child's id. Nothing here logs a body.
"""

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

from server import metrics

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# The attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

log = logging.getLogger("homecoming.request")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "request_id": getattr(record, "request_id", "-")}
        line.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _Handler(logging.StreamHandler):
    """Ours, so that building a second app (tests do) replaces it rather than adding another."""


def configure_logging(log_format: str) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def register_request_log(app: Flask) -> None:
    @app.before_request
    def start():
        offered = request.headers.get("X-Request-Id", "")
        g.request_id = offered if SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        seconds = time.perf_counter() - g.request_started
        route = request.url_rule.rule if request.url_rule else "<no route>"
        metrics.observe_request(request.method, route, response.status_code, seconds)
        response.headers["X-Request-Id"] = g.request_id
        log.info("%s %s %s %.1f ms", request.method, route, response.status_code, seconds * 1000,
                 extra={"method": request.method, "route": route, "status": response.status_code,
                        "ms": round(seconds * 1000, 1)})
        return response
