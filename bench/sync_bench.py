"""Sync benchmark (DESIGN §9, issue 10's targets), against a real server process (waitress, 4 threads),
on SQLite and, given a PostgreSQL URL, on PostgreSQL too, in one run.

    .venv/bin/python bench/sync_bench.py [--postgres URL] [--mutations 20000] [--updates 6000]
                                         [--children 500] [--profile]

``--postgres`` (or TEST_DATABASE_URL) names a database the bench may wipe: it drops and recreates its
``public`` schema. Per database it prints, with the issue's target and met/missed beside each figure:

- push of a registration day over HTTP: --mutations mutations (half children, half their consents) in
  batches of 200, gzip bodies built before the clock starts, sent one after the other on one
  keep-alive connection (so the figure is the server's: HTTP, decoding, ingest, commit, planning);
- push of a mixed batch of updates: --updates child edits in batches of 200, a third of them from a
  stale base_version (another device changed risk_level since): half of those merge, half conflict;
- the raw floor for each, in the same run: the same rows written by a raw ``executemany`` of the
  driver (sqlite3 / psycopg), and the ratio. The floor writes only the records themselves: for
  registrations one row per child and one per consent (the columns the device sent plus id, case
  code, stage, version, seq and timestamps, in clear), for updates one ``UPDATE child SET risk_level,
  district, version = version + 1`` per mutation; into tables with the same columns and indexes (SQLite:
  a second freshly migrated file; PostgreSQL: ``CREATE TEMP TABLE … (LIKE child INCLUDING ALL)``, no
  foreign keys); one statement per table, one commit. No mutation log, history, stage transition,
  encryption, conflict or planning: that is what the ratio charges the server for;
- growth: median seconds per registration batch in the first tenth of the run and in the last;
- first pull of a 500-child caseload (10,000 records) in pages of 500: server time (round trip on
  localhost, median of 5 fresh devices), gzip bytes, and the server's peak RSS (VmHWM) during one such
  pull in a freshly started process.
``--profile`` adds a cProfile of one in-process push of 2,000 mutations (SQLite).
"""

import argparse
import gzip
import http.client
import json
import os
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestingConfig  # noqa: E402
from sync.client import SyncClient  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from tests.sync_devices import PASSPHRASE  # noqa: E402

REPEATS = 5
BATCH = 200
TARGETS = {"push": 5000, "updates": 3000, "ratio": 25, "growth": 1.5, "pull_s": 0.5, "pull_bytes": 1_500_000,
           "rss_mb": 200}


def make_app(url):
    from server import create_app

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = url
    return create_app(config)


def migrate(url):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from models import db

    app = make_app(url)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return app


def enrol(app, username, devices=1):
    """A caseworker and ``devices`` enrolled devices: (tokens, user id)."""
    from models import User, db
    from sync.devices import enroll_device

    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            user = User(username=username, role="caseworker")
            user.set_password("bench-password-not-secret")
            db.session.add(user)
            db.session.flush()
        tokens = [enroll_device(user, f"bench {username} {i}", by=None)[1] for i in range(devices)]
        user_id = user.id
        db.session.commit()
    return tokens, user_id


def child_fields(i, username):
    return {"sex": ("female", "male")[i % 2], "given_name": f"Bench{i}", "family_name": "Fictional",
            "district": "Kitgum", "village": "Fictional Pabo", "birth_year": 2010 + i % 6,
            "caseworker": username, "identified_on": "2026-10-01"}


def consent_fields(child_id):
    return {"child_id": child_id, "purpose": "services", "given_by": "caregiver", "given_on": "2026-10-02"}


def queue_ingest(client, username, mutations):
    """Half children, half consents: the shape of a registration day on a phone (reference client)."""
    for i in range(mutations // 2):
        child_id = client.record("child", child_fields(i, username))
        client.record("consent", consent_fields(child_id))


def queue_caseload(client, username, children):
    """Per child: the child (+ its first stage transition, made by the server), 2 consents,
    3 assessments, 3 services and 10 visits: 20 records a child."""
    for i in range(children):
        child_id = client.record("child", child_fields(i, username))
        for purpose in ("services", "tracing"):
            client.record("consent", {"child_id": child_id, "purpose": purpose, "given_by": "caregiver",
                                      "given_on": "2026-10-02"})
        for kind in ("health", "psychosocial", "education"):
            client.record("assessment", {"child_id": child_id, "kind": kind, "assessed_on": "2026-10-05",
                                         "risk_level": "medium", "scores": {"distress": 12},
                                         "notes": "Fictional note for the benchmark."})
        for kind in ("education", "psychosocial", "medical"):
            client.record("service", {"child_id": child_id, "type": kind, "status": "active",
                                      "started_on": "2026-10-06", "provider": "Fictional provider"})
        for v in range(10):
            client.record("followup", {"child_id": child_id, "kind": "visit", "due_on": f"2026-10-{10 + v:02d}",
                                       "status": "done", "completed_on": f"2026-10-{10 + v:02d}", "seen": True,
                                       "wellbeing": "good", "risk_level": "medium"})


# --- envelopes built by hand, as a phone sends them ----------------------------------------------------

def mutation(entity, record_id, fields, op="create", base=0):
    return {"mutation_id": str(uuid.uuid4()), "entity": entity, "id": str(record_id), "op": op,
            "base_version": base, "fields": fields, "recorded_at": datetime.now(UTC).isoformat()}


def bodies(mutations):
    """Gzip bodies of batches of 200, built before any clock starts."""
    return [gzip.compress(json.dumps({"protocol": 1, "batch_id": str(uuid.uuid4()),
                                      "mutations": mutations[i:i + BATCH]}).encode(), 6)
            for i in range(0, len(mutations), BATCH)]


def registrations(n, username):
    children = [(uuid.uuid4(), child_fields(i, username)) for i in range(n // 2)]
    mutations = []
    for child_id, fields in children:
        mutations += [mutation("child", child_id, fields), mutation("consent", uuid.uuid4(), consent_fields(str(child_id)))]
    return children, mutations


def post_all(base_url, token, batches):
    """Send the batches one after the other on one connection: (seconds per batch, results)."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Content-Encoding": "gzip", "Accept-Encoding": "gzip"}
    seconds, results = [], []
    try:
        for body in batches:
            started = time.perf_counter()
            conn.request("POST", "/api/v1/sync/push", body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            seconds.append(time.perf_counter() - started)
            if response.getheader("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            assert response.status == 200, raw[:300]
            results += json.loads(raw)["results"]
    finally:
        conn.close()
    return seconds, results


def tally(results):
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


# --- the raw floor -------------------------------------------------------------------------------------

class Floor:
    """The same rows through the driver's executemany (see the module docstring for what it writes)."""

    def __init__(self, url, work):
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            for table in ("child", "consent"):
                self.conn.execute(f"CREATE TEMP TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            self.conn.commit()
            self.mark, self.key = "%s", (lambda value: value)
        else:
            floor_url = f"sqlite:///{work / 'floor.sqlite'}"
            migrate(floor_url)
            self.conn = sqlite3.connect(floor_url.removeprefix("sqlite:///"))
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            for table in ("child", "consent"):
                self.conn.execute(f"ALTER TABLE {table} RENAME TO floor_{table}")
            self.conn.commit()
            self.mark, self.key = "?", (lambda value: value.hex)

    def _many(self, sql, rows):
        sql = sql.replace("?", self.mark)
        if self.postgres:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)
        else:
            self.conn.executemany(sql, rows)

    def insert(self, children, user_id):
        """Seconds to insert the registration day's children and consents."""
        now, key = datetime.now(UTC), self.key
        stamp = now if self.postgres else now.isoformat()
        child_rows, consent_rows = [], []
        for i, (child_id, f) in enumerate(children):
            child_rows.append((key(child_id), f"B{i:07d}", f["given_name"], f["family_name"], f["sex"], f["district"],
                               f["village"], f["birth_year"], key(user_id), f["identified_on"], "identified", 1,
                               2 * i, stamp, stamp, False, False, False, False))
            consent_rows.append((key(uuid.uuid4()), key(child_id), "services", "caregiver", "2026-10-02", 1,
                                 2 * i + 1, stamp, stamp))
        started = time.perf_counter()
        self._many("INSERT INTO floor_child (id, case_code, given_name, family_name, sex, district, village,"
                   " birth_year, caseworker_id, identified_on, stage, version, seq, created_at, updated_at,"
                   " child_mother, disability, unaccompanied, needs_review)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", child_rows)
        self._many("INSERT INTO floor_consent (id, child_id, purpose, given_by, given_on, version, seq, created_at,"
                   " updated_at) VALUES (?,?,?,?,?,?,?,?,?)", consent_rows)
        self.conn.commit()
        return time.perf_counter() - started

    def update(self, edits):
        """Seconds to apply the mixed batch's edits as plain UPDATEs, one per mutation."""
        rows = [(f["risk_level"] if "risk_level" in f else None, f.get("district"), self.key(child_id))
                for child_id, f in edits]
        started = time.perf_counter()
        self._many("UPDATE floor_child SET risk_level = COALESCE(?, risk_level), district = COALESCE(?, district),"
                   " version = version + 1 WHERE id = ?", rows)
        self.conn.commit()
        return time.perf_counter() - started

    def close(self):
        self.conn.close()


# --- the pull ------------------------------------------------------------------------------------------

def first_pull(base_url, token, limit):
    """A first pull with raw HTTP: seconds spent waiting for the server, gzip bytes, records."""
    cursor, seconds, size, records = None, 0.0, 0, 0
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        request = urllib.request.Request(base_url + "/api/v1/sync/pull" + query, headers={
            "Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
            encoding = response.headers.get("Content-Encoding")
        seconds += time.perf_counter() - started
        size += len(raw)
        body = json.loads(gzip.decompress(raw) if encoding == "gzip" else raw)
        records += len(body["changes"])
        cursor = body["cursor"]
        if not body["has_more"]:
            return seconds, size, records, encoding


def rss_mb(pid, field="VmHWM"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


# --- one database --------------------------------------------------------------------------------------

def run(name, url, work, args):
    """Every figure for one database, as (label, value text, met or None) rows."""
    print(f"\n== {name} ==", flush=True)
    app = migrate(url)
    floor = Floor(url, work)
    server = ServerProcess(url, log_path=work / f"server-{name}.log").start()
    figures = []
    try:
        # 1. A registration day.
        (token, tablet), user_id = enrol(app, "bench.ingest", devices=2)
        children, mutations = registrations(args.mutations, "bench.ingest")
        batches = bodies(mutations)
        cpu = cpu_seconds(server.pid)
        started = time.perf_counter()
        seconds, results = post_all(server.url, token, batches)
        push_s = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu
        assert tally(results) == {"applied": len(mutations)}, tally(results)
        rate = len(mutations) / push_s
        raw_s = floor.insert(children, user_id)
        tenth = max(1, len(seconds) // 10)
        first, last = median(seconds[:tenth]), median(seconds[-tenth:])
        print(f"  registrations: {len(mutations):,} in {push_s:.2f} s (server CPU {cpu:.2f} s); floor {raw_s:.3f} s; "
              "median s per batch by tenth: " + ", ".join(
                  f"{median(seconds[i * tenth:(i + 1) * tenth]):.3f}" for i in range(min(10, len(seconds) // tenth))),
              flush=True)
        figures += [
            (f"push, registrations ({len(mutations):,}, batches of {BATCH})", f"{rate:,.0f}/s",
             f">= {TARGETS['push']:,}/s", rate >= TARGETS["push"]),
            ("  server CPU (what other load inflates least)", f"{cpu:.2f} s = {len(mutations) / cpu:,.0f}/CPU s", "", None),
            ("  raw floor, same rows (executemany)", f"{raw_s:.3f} s = {len(mutations) / raw_s:,.0f} rows/s", "", None),
            ("  push / floor", f"{push_s / raw_s:.0f}x", f"<= {TARGETS['ratio']}x", push_s / raw_s <= TARGETS["ratio"]),
            ("  batch cost, first tenth -> last", f"{first:.3f} -> {last:.3f} s = {last / first:.2f}x",
             f"<= {TARGETS['growth']}x", last / first <= TARGETS["growth"]),
        ]

        # 2. A mixed batch of updates: the tablet changed risk_level of every third child first.
        count = min(args.updates, len(children))
        stale = [(child_id, {"risk_level": "high"}) for i, (child_id, _) in enumerate(children[:count]) if i % 3 == 0]
        _, setup = post_all(server.url, tablet, bodies([mutation("child", c, f, "update", 1) for c, f in stale]))
        assert tally(setup) == {"applied": len(stale)}, tally(setup)
        edits = []
        for i, (child_id, _) in enumerate(children[:count]):
            if i % 3 == 0:  # from version 1, behind the tablet's version 2: merge, or conflict on risk_level
                edits.append((child_id, {"district": "Gulu", "risk_level": ("low", "high")[i // 3 % 2]}))
            else:
                edits.append((child_id, {"district": "Pader", "risk_level": "medium"}))
        batches = bodies([mutation("child", c, f, "update", 1) for c, f in edits])
        cpu = cpu_seconds(server.pid)
        started = time.perf_counter()
        _, results = post_all(server.url, token, batches)
        update_s = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu
        counts = tally(results)
        assert counts.get("rejected", 0) == 0 and counts.get("conflict", 0) > 0, counts
        floor_s = floor.update(edits)
        rate = count / update_s
        print(f"  updates: {count:,} in {update_s:.2f} s: {counts}; floor {floor_s:.3f} s", flush=True)
        figures += [
            (f"push, mixed updates ({count:,}, a third stale)", f"{rate:,.0f}/s", f">= {TARGETS['updates']:,}/s",
             rate >= TARGETS["updates"]),
            ("  outcomes", ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())), "", None),
            ("  server CPU", f"{cpu:.2f} s = {count / cpu:,.0f}/CPU s", "", None),
            ("  raw floor, same rows (executemany UPDATE)", f"{floor_s:.3f} s", "", None),
            ("  push / floor", f"{update_s / floor_s:.0f}x", f"<= {TARGETS['ratio']}x",
             update_s / floor_s <= TARGETS["ratio"]),
        ]

        # 3. First pull of a 500-child caseload.
        (loader_token, *fresh), _ = enrol(app, "bench.caseload", devices=REPEATS + 2)
        loader = SyncClient(server.url, loader_token, str(work / f"caseload-{name}.sqlite"), passphrase=PASSPHRASE,
                            batch_size=BATCH)
        loader.db.execute("PRAGMA synchronous=OFF")  # the bench's setup only
        queue_caseload(loader, "bench.caseload", args.children)
        loaded = loader.push()
        assert loaded.rejected == 0, loader.failed()[:3]
        runs = sorted(first_pull(server.url, fresh[i], 500) for i in range(REPEATS))
        seconds, size, records, encoding = runs[REPEATS // 2]
        print(f"  first pull: {records:,} records, median {seconds:.3f} s (best {runs[0][0]:.3f} s), {size:,} bytes "
              f"({encoding or 'not compressed'})", flush=True)
        server.stop()
        server.start()
        idle = rss_mb(server.pid, "VmRSS")
        first_pull(server.url, fresh[-1], 500)
        peak = rss_mb(server.pid)
        figures += [
            (f"first pull, {records:,} records, pages of 500", f"{seconds:.3f} s (best {runs[0][0]:.3f})",
             f"<= {TARGETS['pull_s']} s", seconds <= TARGETS["pull_s"]),
            ("  gzip bytes", f"{size / 1000:,.0f} KB", "<= 1.5 MB", size <= TARGETS["pull_bytes"]),
            ("  server peak RSS (fresh process)", f"{peak:.0f} MB (idle {idle:.0f})", f"<= {TARGETS['rss_mb']} MB",
             peak <= TARGETS["rss_mb"]),
        ]
    finally:
        server.stop()
        floor.close()
    return figures


def profile_push(work, mutations=2000):
    import cProfile
    import pstats

    from tests.sync_devices import FlaskTransport

    url = f"sqlite:///{work / 'profile.sqlite'}"
    app = migrate(url)
    (token,), _ = enrol(app, "bench.profile")
    client = SyncClient("http://bench", token, str(work / "profile-device.sqlite"), passphrase=PASSPHRASE,
                        transport=FlaskTransport(app.test_client()))
    queue_ingest(client, "bench.profile", mutations)
    profiler = cProfile.Profile()
    profiler.enable()
    client.push()
    profiler.disable()
    print(f"\ncProfile of an in-process push of {mutations} mutations (batches of 200), top by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def sqlalchemy_url(url):
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="a PostgreSQL database the bench may wipe (default: TEST_DATABASE_URL)")
    parser.add_argument("--mutations", type=int, default=20_000, help="registration mutations (even)")
    parser.add_argument("--updates", type=int, default=6_000, help="mixed update mutations")
    parser.add_argument("--children", type=int, default=500, help="caseload pulled (20 records a child)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="homecoming-sync-bench-"))
    print(f"Sync benchmark in {work}, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}")
    started = time.perf_counter()
    results = {"SQLite": run("SQLite", f"sqlite:///{work / 'server.sqlite'}", work, args)}
    if args.postgres:
        results["PostgreSQL"] = run("PostgreSQL", sqlalchemy_url(args.postgres), work, args)
    else:
        print("\n(no PostgreSQL: pass --postgres URL or set TEST_DATABASE_URL)")

    names = list(results)
    labels = [row[0] for row in results[names[0]]]
    width = max(map(len, labels))
    print(f"\n{'figure':<{width}}  " + "  ".join(f"{n:<34}" for n in names) + "  target")
    for i, label in enumerate(labels):
        cells = []
        for n in names:
            _label, value, _target, met = results[n][i]
            cells.append(f"{value} {'' if met is None else ('[met]' if met else '[MISSED]')}".ljust(34))
        print(f"{label:<{width}}  " + "  ".join(cells) + f"  {results[names[0]][i][2]}")
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    if args.profile:
        profile_push(work)


if __name__ == "__main__":
    main()
