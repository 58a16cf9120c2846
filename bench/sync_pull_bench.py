"""First-pull cost of the sync endpoint in one process (issue 10: a 10,000-record first pull ≤ 0.5 s).

    .venv/bin/python bench/sync_pull_bench.py [--database /tmp/pull_bench.sqlite | --postgres URL]
                                             [--children 500] [--runs 5] [--limit 500] [--http] [--profile]

Builds (once, kept in --database, or in the PostgreSQL database --postgres names, which it may wipe) a 500-child caseload shaped like bench/sync_bench.py's (per child: the
child, its first stage transition, 2 consents, 3 assessments, 3 services, 10 visits: 10,000 records),
pushed through the real endpoint by the reference client, next to another caseworker's 20,000 rows.
Then pulls it from empty with fresh devices through the Flask test client (gzip accepted, no network),
and prints wall and process-CPU seconds per full pull (median and best of --runs) and gzip bytes. CPU
time is what other processes' load on a shared machine does not inflate. ``--http`` also times the
same pulls over HTTP against the app under waitress in its own process, as bench/sync_bench.py's first
pull does (round trip on localhost: the issue's "server time"), without that script's pushes.
``--profile`` prints a cProfile of one more full pull.
"""

import argparse
import cProfile
import gzip
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_bench import (  # noqa: E402
    enrol,
    first_pull,
    make_app,
    median,
    migrate,
    queue_caseload,
    queue_ingest,
    sqlalchemy_url,
)
from sync.client import SyncClient  # noqa: E402
from tests.sync_devices import PASSPHRASE, FlaskTransport  # noqa: E402


def build(url, children):
    app = migrate(url)
    for username, fill in (("bench.other", lambda c: queue_ingest(c, "bench.other", 20_000)),
                           ("bench.caseload", lambda c: queue_caseload(c, "bench.caseload", children))):
        (token,), _ = enrol(app, username)
        client = SyncClient("http://bench", token, tempfile.mktemp(suffix=".sqlite"), passphrase=PASSPHRASE, batch_size=200,
                            transport=FlaskTransport(app.test_client()))
        client.db.execute("PRAGMA synchronous=OFF")
        fill(client)
        report = client.push()
        assert report.rejected == 0, client.failed()[:3]
    return app


def has_caseload(app):
    from sqlalchemy.exc import ProgrammingError

    from models import User, db

    with app.app_context():
        try:
            return db.session.execute(db.select(User.id).where(User.username == "bench.caseload")).first() is not None
        except ProgrammingError:  # not migrated
            return False


def fresh_token(app):
    from models import User, db
    from sync.devices import enroll_device

    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "bench.caseload")).scalar_one()
        token = enroll_device(user, "bench fresh phone", by=None)[1]
        db.session.commit()
    return token


def full_pull(test_client, token, limit):
    """(wall seconds, CPU seconds, gzip bytes, records) of one first pull, page by page; the times
    cover the requests only, not decoding the pages here."""
    cursor, size, records, wall, cpu = None, 0, 0, 0.0, 0.0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        response = test_client.get("/api/v1/sync/pull", query_string=query, headers={
            "Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
        raw = response.get_data()
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
        assert response.status_code == 200, raw[:300]
        size += len(raw)
        page = json.loads(gzip.decompress(raw))
        records += len(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return wall, cpu, size, records


def over_http(app, url, args):
    from tests.server_process import ServerProcess

    server = ServerProcess(url).start()
    try:
        first_pull(server.url, fresh_token(app), args.limit)  # warm-up
        runs = [first_pull(server.url, fresh_token(app), args.limit) for _ in range(args.runs)]
    finally:
        server.stop()
    seconds = sorted(r[0] for r in runs)
    print(f"First pull over HTTP (waitress, gzip): median {median(seconds):.3f} s (best {seconds[0]:.3f}) of "
          f"{args.runs}; {runs[0][1]:,} bytes {runs[0][3] or 'not compressed'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=None, help="SQLite file to build or reuse")
    parser.add_argument("--postgres", default=None,
                        help="a PostgreSQL database to build in (wiping it) or reuse if it holds the bench's data")
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--http", action="store_true", help="also over HTTP, against waitress in its own process")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    if args.postgres:
        url, where = sqlalchemy_url(args.postgres), args.postgres
        app = make_app(url)
        built = has_caseload(app)
    else:
        path = Path(args.database or Path(tempfile.mkdtemp(prefix="homecoming-pull-bench-")) / "server.sqlite")
        url, where, built = f"sqlite:///{path}", path, path.exists()
        app = make_app(url) if built else None
    if built:
        print(f"Reusing {where}")
    else:
        started = time.perf_counter()
        app = build(url, args.children)
        print(f"Built {where} in {time.perf_counter() - started:.0f} s")
    test_client = app.test_client()
    full_pull(test_client, fresh_token(app), args.limit)  # warm-up: imports, statement caches
    runs = sorted(full_pull(test_client, fresh_token(app), args.limit) for _ in range(args.runs))
    by_cpu = sorted(r[1] for r in runs)
    wall, cpu, size, records = runs[len(runs) // 2][0], by_cpu[len(by_cpu) // 2], runs[0][2], runs[0][3]
    print(f"First pull, {records:,} records in pages of {args.limit}, in-process (test client, gzip): wall median {wall:.3f} s (best {runs[0][0]:.3f}), CPU median {cpu:.3f} s "
          f"(best {by_cpu[0]:.3f}) of {args.runs}; {size:,} bytes gzip")
    if args.http:
        over_http(app, url, args)
    if args.profile:
        token = fresh_token(app)
        profiler = cProfile.Profile()
        profiler.enable()
        full_pull(test_client, token, args.limit)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
