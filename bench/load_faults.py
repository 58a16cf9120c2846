"""Load with faults (issue 15): gunicorn workers on PostgreSQL, simulated devices syncing, and faults.

    .venv/bin/python bench/load_faults.py [--workers 1,2,4] [--hosts 2x2] [--devices 200] [--seconds 300]
                                          [--batch 200] [--think 5] [--no-faults]

Starts a throwaway PostgreSQL cluster of its own (initdb + pg_ctl in a temporary folder on a free port,
as the ``postgres`` user when run as root), never the machine's. Per run: a fresh database, N gunicorn
workers (deploy/gunicorn.conf.py, the production config, JSON logs, metrics on) on one port, or with
``--hosts GxW`` G groups of W workers on G ports as G "hosts", and two ``flask scheduler run``
processes. M device threads speak the sync protocol over HTTP (gzip, keep-alive), spread over the
hosts as a load balancer would; pairs of devices share a caseworker, so their edits of the same child
race. Each cycle a device pushes one batch (registrations: child + consent; visits; edits of
``risk_level`` from the version it last pulled, stale when its twin got there first), pulls every page
until ``has_more`` is false, then waits about ``--think`` seconds. A push or page that fails is retried
as a device would: the same batch (same ids) after ``Retry-After`` on 503, or after a short pause when
the connection dropped. Like any HTTP client's pool, a device does not send on a kept-alive connection
the server has closed meanwhile (counted as "reopened", not as an error).

Faults, at a quarter, half and three quarters of the run: kill -9 one gunicorn worker; restart
PostgreSQL (``pg_ctl restart -m fast``); kill -9 the scheduler leader while the second waits.

Printed per run: p50/p95/p99 of push (a whole batch) and pull (a page) latency, mutations/s applied,
every failed attempt by cause (503 + Retry-After while PostgreSQL restarted; a connection of the worker
killed -9, reset; a page cut while PostgreSQL restarted; anything else, or any failure the device's
retries did not turn into a 200, is a "real error"; ``--failures FILE`` writes each one with its
timings), and a reconciliation against
the database: every mutation sent is in mutation_log exactly once with the outcome the device got,
every applied create is a record, every applied edit reached its version, every conflict is kept;
0 lost, 0 duplicated.
"""

import argparse
import gzip
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestingConfig  # noqa: E402

BIN = Path(sys.executable).parent
METRICS_TOKEN = "bench-metrics-token-fictional"
GRACE_SECONDS = 5  # 503s this long after PostgreSQL is back are still the restart's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: Debian's newest /usr/lib/postgresql/*/bin, else PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A PostgreSQL cluster of our own in ``folder``; the only one this script ever restarts."""

    def __init__(self, folder: Path):
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.as_postgres = os.geteuid() == 0  # initdb refuses root

    def _run(self, *args, timeout=120):
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)

    def init(self) -> "Cluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.folder}'\nmax_connections = 400\n"
                       "shared_buffers = 256MB\n")
        self.start()
        return self

    def start(self):
        # -l: the server's output to a file, not to our pipe (which would then never reach its end).
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "start")

    def restart(self) -> float:
        """Fast restart (connections cut, as a crash or an upgrade would); seconds it was down."""
        started = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-m", "fast", "-w",
                  "restart")
        return time.monotonic() - started

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except subprocess.CalledProcessError:
            pass

    def url(self, database="homecoming") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self):
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS homecoming WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE homecoming"))
        engine.dispose()


def server_env(cluster: Cluster, work: Path) -> dict:
    """The production config with fictional keys (the data is fictional), JSON logs, metrics on."""
    test = TestingConfig()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECOMING_")}
    env.update({
        "HOMECOMING_CONFIG": "production", "HOMECOMING_DATABASE_URL": cluster.url(),
        "HOMECOMING_SECRET_KEY": test.SECRET_KEY, "HOMECOMING_DATA_KEY": test.DATA_KEY,
        "HOMECOMING_SEARCH_KEY": test.SEARCH_KEY, "HOMECOMING_BASE_URL": "http://homecoming.test",
        "HOMECOMING_LOG_FORMAT": "json", "HOMECOMING_METRICS_TOKEN": METRICS_TOKEN,
        "HOMECOMING_LEADER_POLL_SECONDS": "1", "HOMECOMING_TIMEOUT": "120",
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "PYTHONUNBUFFERED": "1",
    })
    return env


def get(url: str, timeout=2.0, headers=None) -> tuple[int, bytes]:
    parts = url.removeprefix("http://").split("/", 1)
    host, port = parts[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + parts[1], headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Host:
    """One group of gunicorn workers on a port of its own: a "host" behind the load balancer."""

    def __init__(self, env: dict, workers: int, threads: int, log: Path):
        self.port, self.workers, self.threads, self.log = free_port(), workers, threads, log
        self.env = {**env, "HOMECOMING_BIND": f"127.0.0.1:{self.port}", "HOMECOMING_WORKERS": str(workers),
                    "HOMECOMING_THREADS": str(threads)}
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                      "wsgi:app"], cwd=ROOT, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                if get(self.url + "/readyz")[0] == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready; see {self.log}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def replaced(self, killed: int) -> bool:
        pids = self.worker_pids()
        return len(pids) == self.workers and killed not in pids

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Scheduler:
    def __init__(self, env: dict, log: Path):
        self.log = log
        out = open(log, "ab")
        self.proc = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "scheduler", "run"], cwd=ROOT, env=env,
                                     stdout=out, stderr=out)

    def leading(self) -> bool:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.startswith("scheduler:")]
        return bool(lines) and lines[-1].startswith("scheduler: leading")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_for(condition, timeout: float, step=0.1) -> float | None:
    """Seconds until ``condition()`` held, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(step)
    return None


# --- devices ---------------------------------------------------------------------------------------------

@dataclass
class Failure:
    """One attempt that did not get its 200, with what is needed to say why."""

    at: float  # monotonic time it failed
    started: float  # monotonic time the attempt began
    opened: float  # monotonic time its connection was opened
    idle: float | None  # seconds the connection had been idle before this attempt; None if new
    host: str
    what: str  # "POST /api/v1/sync/push"
    kind: str  # "503 + Retry-After", "connection", "500", ...
    detail: str  # the exception's name, or the start of the body
    retried_ok: bool = False  # the device's retries of the same request got their 200


@dataclass
class Tally:
    """What every device saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    push_seconds: list = field(default_factory=list)
    pull_seconds: list = field(default_factory=list)
    sent: dict = field(default_factory=dict)  # mutation_id -> (entity, id, op)
    results: dict = field(default_factory=dict)  # mutation_id -> result
    failures: list = field(default_factory=list)
    reopened: list = field(default_factory=list)  # (when, opened, host) of idle connections found closed

    def failed(self, failure: Failure) -> Failure:
        with self.lock:
            self.failures.append(failure)
        return failure


def closed_by_server(conn: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed (FIN or RST): no answer is pending."""
    if conn.sock is None:
        return False
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return bool(readable)


class Device(threading.Thread):
    def __init__(self, number, token, username, url, tally, stop, batch, think):
        super().__init__(name=f"device-{number}", daemon=True)
        self.number, self.token, self.username = number, token, username
        host, port = url.removeprefix("http://").split(":")
        self.url, self.host, self.port = url, host, int(port)
        self.opened, self.idle_since = 0.0, None  # of the current connection
        self.tally, self.stop, self.batch, self.think = tally, stop, batch, think
        self.versions: dict[str, int] = {}  # child id -> version last pulled
        self.cursor = None
        self.conn = None
        self.random = random.Random(number)
        self.registered = 0

    def request(self, method, path, body=None):
        """One HTTP exchange: (status, headers, body bytes), or raises OSError/HTTPException."""
        if self.conn is not None and closed_by_server(self.conn):
            # As every HTTP client's pool does (urllib3, OkHttp, browsers): a kept-alive connection the
            # server has since closed (its keepalive ran out, or its worker died) is not reused.
            self.conn.close()
            self.conn = None
            with self.tally.lock:
                self.tally.reopened.append((time.monotonic(), self.opened, self.url))
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.opened, self.idle_since = time.monotonic(), None
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Encoding": "gzip"}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        self.idle_since = time.monotonic()
        if response.getheader("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return response.status, response, raw

    def until_ok(self, method, path, body=None):
        """Retry as a device would, until a 200 (or the run is abandoned): (seconds of the good try, body)."""
        failures = []

        def failed(kind, detail):
            failures.append(self.tally.failed(Failure(time.monotonic(), started, self.opened, idle, self.url,
                                                      f"{method} {path.split('?')[0]}", kind, detail)))

        for _ in range(600):
            started = time.monotonic()
            idle = None if self.conn is None or self.idle_since is None else started - self.idle_since
            try:
                status, response, raw = self.request(method, path, body)
            except (OSError, http.client.HTTPException, EOFError) as exc:
                failed("connection", type(exc).__name__)
                time.sleep(0.5)
                continue
            if status == 200:
                seconds = time.monotonic() - started  # the server's answer, not our parsing of it
                try:
                    answer = json.loads(raw)
                except ValueError:  # a stream cut short (its worker died, or PostgreSQL did)
                    failed("connection", "truncated body")
                    time.sleep(0.5)
                    continue
                for failure in failures:
                    failure.retried_ok = True
                return seconds, answer
            retry_after = response.getheader("Retry-After")
            failed(f"{status}" + (" + Retry-After" if retry_after else ""), raw[:200].decode(errors="replace"))
            if status != 503 or not retry_after:
                return None, None
            time.sleep(min(float(retry_after), 2.0) * self.random.uniform(0.5, 1.0))
        return None, None

    def mutations(self) -> list[dict]:
        now = datetime.now(UTC).isoformat()

        def mutation(entity, record_id, fields, op="create", base=0):
            return {"mutation_id": str(uuid.uuid4()), "entity": entity, "id": str(record_id), "op": op,
                    "base_version": base, "fields": fields, "recorded_at": now}

        out, known = [], list(self.versions.items())
        while len(out) < self.batch:
            kind = self.random.random()
            if kind < 0.3 or not known:
                child_id = uuid.uuid4()
                self.registered += 1
                out.append(mutation("child", child_id, {
                    "sex": self.random.choice(("female", "male")), "given_name": f"Load{self.number}x{self.registered}",
                    "family_name": "Fictional", "district": "Kitgum", "village": "Fictional Pabo",
                    "birth_year": 2010, "caseworker": self.username, "identified_on": "2026-10-01"}))
                out.append(mutation("consent", uuid.uuid4(), {"child_id": str(child_id), "purpose": "services",
                                                               "given_by": "caregiver", "given_on": "2026-10-02"}))
            elif kind < 0.7:
                child_id, _ = self.random.choice(known)
                day = self.random.randint(10, 28)
                out.append(mutation("followup", uuid.uuid4(), {
                    "child_id": child_id, "kind": "visit", "due_on": f"2026-10-{day}", "status": "done",
                    "completed_on": f"2026-10-{day}", "seen": True, "wellbeing": "good", "risk_level": "medium"}))
            else:
                # An edit from the version last pulled: stale if the twin device edited the child since.
                child_id, version = self.random.choice(known)
                out.append(mutation("child", child_id, {"risk_level": self.random.choice(("low", "medium", "high"))},
                                    op="update", base=version))
        return out[:self.batch]

    def push(self):
        mutations = self.mutations()
        with self.tally.lock:
            for m in mutations:
                self.tally.sent[m["mutation_id"]] = (m["entity"], m["id"], m["op"])
        body = gzip.compress(json.dumps({"protocol": 1, "batch_id": str(uuid.uuid4()),
                                         "mutations": mutations}).encode(), 6)
        seconds, answer = self.until_ok("POST", "/api/v1/sync/push", body)
        if answer is None:
            return
        with self.tally.lock:
            self.tally.push_seconds.append(seconds)
            for result in answer["results"]:
                self.tally.results[result["mutation_id"]] = result

    def pull(self):
        while True:
            path = "/api/v1/sync/pull?limit=500" + (f"&cursor={quote(self.cursor)}" if self.cursor else "")
            seconds, page = self.until_ok("GET", path)
            if page is None:
                return
            with self.tally.lock:
                self.tally.pull_seconds.append(seconds)
            for change in page["changes"]:
                if change["entity"] == "child":
                    if change["op"] == "remove":
                        self.versions.pop(change["id"], None)
                    else:
                        self.versions[change["id"]] = change["version"]
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return

    def run(self):
        # Devices do not all wake at once.
        self.stop.wait(self.random.uniform(0, self.think))
        while not self.stop.is_set():
            self.push()
            self.pull()
            self.stop.wait(self.random.uniform(0.5, 1.5) * self.think)
        if self.conn:
            self.conn.close()


# --- one run ---------------------------------------------------------------------------------------------

@dataclass
class Report:
    label: str
    workers: int
    hosts: int
    devices: int
    seconds: float
    push_ms: tuple = ()
    pull_ms: tuple = ()
    pushes: int = 0
    pages: int = 0
    mutations_per_s: float = 0.0
    sent: int = 0
    outcomes: dict = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0
    missing_records: int = 0
    missing_conflicts: int = 0
    errors: dict = field(default_factory=dict)  # cause -> attempts that failed
    real: list = field(default_factory=list)  # failures no fault explains, or never retried to a 200
    reopened: int = 0  # idle connections the server had closed, replaced before a request was sent
    reopened_killed: int = 0  # of them, those the killed worker had held
    faults: dict = field(default_factory=dict)
    metrics_applied: float | None = None


def percentiles(values) -> tuple:
    if not values:
        return (float("nan"),) * 3
    ordered = sorted(values)

    def at(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return at(0.50), at(0.95), at(0.99)


def enrol(url: str, devices: int) -> list[tuple[str, str]]:
    """Caseworkers with two devices each: (token, username) per device."""
    from flask_migrate import upgrade

    from models import User, db
    from server import create_app
    from sync.devices import enroll_device

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = url
    app = create_app(config)
    out = []
    with app.app_context():
        upgrade()
        # Devices never sign in: one (slow, scrypt) hash serves every caseworker.
        hashed = User(username="-", role="caseworker")
        hashed.set_password("bench-password-not-secret")
        for pair in range((devices + 1) // 2):
            user = User(username=f"load.cw{pair}", role="caseworker", display_name=f"Fictional caseworker {pair}",
                        password_hash=hashed.password_hash)
            db.session.add(user)
            db.session.flush()
            for twin in range(2):
                out.append((enroll_device(user, f"load phone {pair}.{twin}", by=None)[1], user.username))
        db.session.commit()
        db.engine.dispose()
    return out[:devices]


def reconcile(url: str, tally: Tally, report: Report) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        logged = {}
        for mutation_id, status, count in conn.execute(text(
                "SELECT mutation_id::text, min(status), count(*) FROM mutation_log GROUP BY mutation_id")):
            logged[mutation_id] = (status, count)
        records = {table: dict(conn.execute(text(f"SELECT id::text, version FROM {table}")).all())
                   for table in ("child", "consent", "followup")}
        conflicts = {row[0] for row in conn.execute(text("SELECT id::text FROM conflict"))}
    engine.dispose()
    report.sent = len(tally.sent)
    report.lost = sum(1 for m in tally.sent if m not in logged)
    report.duplicated = sum(1 for status, count in logged.values() if count > 1) + sum(
        1 for m in logged if m not in tally.sent)
    for mutation_id, result in tally.results.items():
        status = result["status"]
        report.outcomes[status] = report.outcomes.get(status, 0) + 1
        if mutation_id in logged and logged[mutation_id][0] != status:
            report.mismatched += 1
        entity, record_id, op = tally.sent[mutation_id]
        if status == "applied":
            version = records[entity].get(record_id)
            if version is None or version < result.get("version", 1):
                report.missing_records += 1
        if status == "conflict" and result.get("conflict_id") not in conflicts:
            report.missing_conflicts += 1
    # Every record a device created is one whose create it was told "applied" for: none stored behind a
    # "duplicate" or a "rejected". (The server's own planned visits have ids no device sent.)
    created = {tally.sent[m][1] for m, r in tally.results.items() if r["status"] == "applied" and tally.sent[m][2] == "create"}
    sent_creates = {record_id for _entity, record_id, op in tally.sent.values() if op == "create"}
    stored = set().union(*(set(rows) for rows in records.values())) & sent_creates
    report.duplicated += len(stored - created)


PG_503 = "503 + Retry-After while PostgreSQL restarted"
KILLED = "reset: connection of the killed worker"
PG_CUT = "cut while PostgreSQL restarted"
REAL = "real error"


def cause(failure: Failure, timeline: dict) -> str:
    """Which fault explains a failed attempt (the device retried each to its 200), or REAL."""
    if not failure.retried_ok:
        return REAL
    postgres, kill = timeline.get("postgres"), timeline.get("kill")
    while_restarting = postgres is not None and postgres[0] <= failure.at <= postgres[1]
    if failure.kind == "503 + Retry-After" and while_restarting:
        return PG_503
    if failure.kind == "connection":
        # In flight on, or kept alive by, the worker killed -9: the kernel resets its connections.
        if kill is not None and failure.host == kill[1] and failure.opened <= kill[0] <= failure.at:
            return KILLED
        if while_restarting:
            return PG_CUT
    return REAL


def fault_plan(seconds: float):
    return {"kill_worker": seconds * 0.25, "restart_postgres": seconds * 0.5, "kill_scheduler_leader": seconds * 0.75}


def run_once(cluster: Cluster, work: Path, *, workers: int, hosts: int, devices: int, seconds: float, batch: int,
             think: float, threads: int = 4, faults: bool = True, label: str = "",
             failures_file: str | None = None) -> Report:
    cluster.fresh_database()
    tokens = enrol(cluster.url(), devices)
    env = server_env(cluster, work)
    shutil.rmtree(work / "metrics", ignore_errors=True)
    name = label or f"{hosts}x{workers}"
    group = [Host(env, workers, threads, work / f"{name}-gunicorn-{i}.log") for i in range(hosts)]
    schedulers = []
    report = Report(name, workers, hosts, devices, seconds)
    tally, stop = Tally(), threading.Event()
    try:
        for host in group:
            host.start()
        if faults:
            schedulers = [Scheduler(env, work / f"{name}-scheduler-{i}.log") for i in range(2)]
            if wait_for(lambda: sum(s.leading() for s in schedulers) == 1, 60) is None:
                raise RuntimeError(f"no scheduler took the lead; see {work}/scheduler-*.log")
        threads_ = [Device(i, token, username, group[i % hosts].url, tally, stop, batch, think)
                    for i, (token, username) in enumerate(tokens)]
        started = time.monotonic()
        for device in threads_:
            device.start()
        timeline = {}
        if faults:
            for fault, at in sorted(fault_plan(seconds).items(), key=lambda item: item[1]):
                time.sleep(max(0.0, started + at - time.monotonic()))
                if fault == "kill_worker":
                    killed = group[0].kill_worker()
                    timeline["kill"] = (time.monotonic(), group[0].url)
                    report.faults["worker killed, replaced after s"] = wait_for(
                        partial(group[0].replaced, killed), 30)
                elif fault == "restart_postgres":
                    down = time.monotonic()
                    report.faults["postgres down s"] = cluster.restart()
                    timeline["postgres"] = (down, time.monotonic() + GRACE_SECONDS)
                else:
                    wait_for(lambda: any(s.leading() for s in schedulers), 30)
                    leader = next(s for s in schedulers if s.leading())
                    leader.proc.send_signal(signal.SIGKILL)
                    leader.proc.wait(10)
                    other = next(s for s in schedulers if s is not leader)
                    report.faults["scheduler leader killed, taken over after s"] = wait_for(other.leading, 30)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for device in threads_:
            device.join(180)
        elapsed = time.monotonic() - started
        report.push_ms, report.pull_ms = percentiles(tally.push_seconds), percentiles(tally.pull_seconds)
        report.pushes, report.pages = len(tally.push_seconds), len(tally.pull_seconds)
        report.reopened = len(tally.reopened)
        report.mutations_per_s = len(tally.results) / elapsed
        report.metrics_applied = scrape_applied(group[0].url)
    finally:
        stop.set()
        for scheduler in schedulers:
            scheduler.stop()
        for host in group:
            host.stop()
    for failure in tally.failures:
        why = cause(failure, timeline)
        report.errors[why] = report.errors.get(why, 0) + 1
        if why == REAL:
            report.real.append(failure)
    if failures_file:
        with open(failures_file, "a") as out:
            for failure in tally.failures:
                out.write(json.dumps({"run": name, "cause": cause(failure, timeline),
                                      **{k: round(v - started, 3) if k in ("at", "started", "opened") else v
                                         for k, v in vars(failure).items()},
                                      "faults": {k: round(v[0] - started, 3) for k, v in timeline.items()}}) + "\n")
    kill = timeline.get("kill")
    report.reopened_killed = sum(1 for _at, opened, host in tally.reopened
                                 if kill and host == kill[1] and opened <= kill[0])
    reconcile(cluster.url(), tally, report)
    return report


def scrape_applied(url: str) -> float | None:
    status, body = get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    if status != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith('homecoming_sync_push_mutations_total{outcome="applied"}'):
            return float(line.split()[-1])
    return 0.0


def print_reports(reports: list[Report]) -> None:
    print(f"{'run':<8}{'dev':>5}{'push p50/p95/p99 ms':>24}{'pull p50/p95/p99 ms':>24}{'pushes':>8}{'pages':>7}"
          f"{'mut/s':>8}{'sent':>8}{'lost':>6}{'dup':>5}  errors")
    for r in reports:
        push = "/".join(f"{v:.0f}" for v in r.push_ms)
        pull = "/".join(f"{v:.0f}" for v in r.pull_ms)
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())) or "none"
        print(f"{r.label:<8}{r.devices:>5}{push:>24}{pull:>24}{r.pushes:>8}{r.pages:>7}{r.mutations_per_s:>8.0f}"
              f"{r.sent:>8}{r.lost:>6}{r.duplicated:>5}  {errors}")
    for r in reports:
        checks = (f"outcomes {r.outcomes}; log status differs {r.mismatched}, applied but absent "
                  f"{r.missing_records}, conflicts not kept {r.missing_conflicts}, real errors {len(r.real)}; "
                  f"idle connections found closed and reopened {r.reopened} ({r.reopened_killed} "
                  f"opened before the kill, to the killed worker's host); /metrics applied {r.metrics_applied}")
        print(f"  {r.label}: {checks}")
        for name, value in r.faults.items():
            print(f"  {r.label}: {name} {value if value is None else round(value, 2)}")
        for failure in r.real[:5]:
            print(f"  {r.label}: REAL ERROR {failure.what}: {failure.kind} {failure.detail}"
                  f"{'' if failure.retried_ok else ' (never got its 200)'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, one run each (one host)")
    parser.add_argument("--hosts", default="2x2", help="GxW: a further run with G hosts of W workers ('' for none)")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--batch", type=int, default=200, help="mutations per push")
    parser.add_argument("--think", type=float, default=5.0, help="mean seconds a device waits between syncs")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--failures", metavar="FILE", help="append every failed attempt to FILE as JSON lines")
    args = parser.parse_args()
    shapes = [(1, int(w)) for w in args.workers.split(",") if w]
    if args.hosts:
        g, w = args.hosts.lower().split("x")
        shapes.append((int(g), int(w)))
    work = Path(tempfile.mkdtemp(prefix="homecoming-load-"))
    work.chmod(0o755)  # the postgres user must reach its folder inside
    cluster = Cluster(work / "pg").init()
    print(f"# PostgreSQL of our own on port {cluster.port} in {work}; {os.cpu_count()} cores; "
          f"{args.devices} devices, {args.seconds:.0f} s a run, batches of {args.batch}, think {args.think} s, "
          f"faults {'off' if args.no_faults else 'on'}", flush=True)
    reports = []
    try:
        for hosts, workers in shapes:
            label = f"{workers}w" if hosts == 1 else f"{hosts}x{workers}w"
            reports.append(run_once(cluster, work, workers=workers, hosts=hosts, devices=args.devices,
                                    seconds=args.seconds, batch=args.batch, think=args.think, threads=args.threads,
                                    faults=not args.no_faults, label=label,
                                    failures_file=args.failures))
            print_reports(reports[-1:])
            print(flush=True)
    finally:
        cluster.stop()
    print_reports(reports)
    bad = [r.label for r in reports if r.lost or r.duplicated or r.real or r.mismatched
           or r.missing_records or r.missing_conflicts]
    print("reconciliation: " + ("0 lost, 0 duplicated, every conflict kept" if not bad else f"FAILED in {bad}"))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
