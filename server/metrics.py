"""``GET /metrics`` in the Prometheus text format, and the counters the rest of the app bumps.

Off unless ``HOMECOMING_METRICS_TOKEN`` is set (404, as if absent); then only a request carrying
``Authorization: Bearer <that token>`` gets the figures (401 otherwise). Labels are route rules
(``/api/v1/children/<uuid:child_id>``), outcomes, job ids and channel names: never a path with ids,
never a value from a record.

Under gunicorn each worker is its own process: with ``PROMETHEUS_MULTIPROC_DIR`` set (see
deploy/gunicorn.conf.py and docs/deploy.md) every process, the scheduler's included, writes its
figures to files in that folder and a scrape of any worker adds them all up.
"""

import hmac
import os
from collections import Counter as Tally

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event

from server.errors import ApiError

bp = Blueprint("metrics", __name__)

REQUESTS = Counter("homecoming_http_requests", "HTTP requests answered, by route rule and status",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("homecoming_http_request_duration_seconds",
                            "Time to the response's headers, by route rule", ["method", "route"],
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PUSH_MUTATIONS = Counter("homecoming_sync_push_mutations", "Pushed mutations, by outcome", ["outcome"])
PULL_PAGES = Counter("homecoming_sync_pull_pages", "Pull pages served")
SCHEDULER_RUNS = Counter("homecoming_scheduler_runs", "Scheduled job runs, by job and result",
                         ["job", "result"])
ALERTS_CREATED = Counter("homecoming_alerts_created", "Alerts created by the alert scan")
NOTIFICATIONS = Counter("homecoming_notifications", "Notification digests, by channel and outcome",
                        ["channel", "outcome"])
DB_CONNECTIONS_IN_USE = Gauge("homecoming_db_connections_in_use", "Database connections checked out of the pool",
                              multiprocess_mode="livesum")
DB_CONNECTIONS_OPENED = Counter("homecoming_db_connections_opened", "Database connections opened by the pool")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)


def count_push(results: list[dict], replayed: bool = False) -> None:
    """A batch sent again after its answer was lost repeats the first answers: count those apart."""
    if replayed:
        PUSH_MUTATIONS.labels("replayed").inc(len(results))
        return
    for status, count in Tally(result["status"] for result in results).items():
        PUSH_MUTATIONS.labels(status).inc(count)


def count_notification(channel: str, outcome: str, amount: int = 1) -> None:
    if amount:
        NOTIFICATIONS.labels(channel, outcome).inc(amount)


def watch_pool(engine) -> None:
    """Follow the engine's pool: connections in use now, and how many were ever opened."""
    event.listen(engine, "connect", lambda *_: DB_CONNECTIONS_OPENED.inc())
    event.listen(engine, "checkout", lambda *_: DB_CONNECTIONS_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: DB_CONNECTIONS_IN_USE.dec())


def _registry():
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    return registry


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    offered = request.headers.get("Authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "unauthorized", "Send the metrics token as 'Authorization: Bearer <token>'.",
                       headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
