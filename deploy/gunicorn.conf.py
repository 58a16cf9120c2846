"""gunicorn settings for production: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app`` (docs/deploy.md).

Everything comes from the environment, so the systemd unit's EnvironmentFile is the one place to tune:

- HOMECOMING_BIND: where to listen (default 127.0.0.1:8000; nginx sits in front and terminates TLS).
- HOMECOMING_WORKERS: worker processes (default 2 x cores + 1, at most 8). The app keeps no state in
  memory, so any worker (on any host) can answer any request.
- HOMECOMING_THREADS: threads per worker (default 4): sync pulls stream and wait on the database.
- HOMECOMING_TIMEOUT: seconds before a silent worker is killed and replaced (default 60).
- HOMECOMING_KEEPALIVE: seconds an idle keep-alive connection is kept open (default 75). It must be
  longer than the idle timeout of whatever reuses the connections: nginx's ``keepalive_timeout`` in
  ``upstream homecoming_web`` (60 s, deploy/nginx/homecoming.conf) or a load balancer's. Otherwise
  gunicorn closes a connection just as nginx sends a request on it, and a POST (a sync push) fails as
  a 502: nginx does not repeat a POST it has begun to send.
- PROMETHEUS_MULTIPROC_DIR: a folder private to this service, emptied at start, where the workers
  write their metrics so that /metrics adds them up (server/metrics.py).

No access log: a URL can carry search words (a child's name); server/logging_setup.py logs one line
per request with the route's rule, never the path or the query string.
"""

import multiprocessing
import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None


bind = os.environ.get("HOMECOMING_BIND", "127.0.0.1:8000")
workers = _int("HOMECOMING_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8))
threads = _int("HOMECOMING_THREADS", 4)
worker_class = "gthread"
timeout = _int("HOMECOMING_TIMEOUT", 60)
graceful_timeout = 30
keepalive = _int("HOMECOMING_KEEPALIVE", 75)
accesslog = None
errorlog = "-"
# Each worker builds its own app (and database pool) after the fork: a pool must never cross a fork.
preload_app = False


def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        # Figures of processes that are gone would otherwise be added to this run's; the scheduler,
        # which shares the folder, may still be running: keep the files of live processes.
        path = Path(folder)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for file in path.glob("*.db"):
            if not _alive(file.stem.rpartition("_")[2]):
                file.unlink(missing_ok=True)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
