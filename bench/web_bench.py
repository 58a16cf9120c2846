"""Web page timings at scale (DESIGN §9): 100,000 children and 1,000,000 follow-ups on SQLite.

    .venv/bin/python bench/web_bench.py [--children 100000] [--followups 1000000] [--runs 30]

Builds a fresh SQLite database in a temporary folder through the real migrations, bulk-inserts
fictional rows with Core ``executemany`` (names still pass through the encrypting column type, as the
app would store them), signs in a manager through the login form, and times each page with the
Flask test client. Prints the median and 95th percentile per page, and the reports page as well.
Target: dashboard median ≤ 150 ms.
"""

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DISTRICTS = ("Kitgum", "Lamwo", "Pader", "Agago", "Gulu", "Amuru", "Nwoya", "Omoro")
STAGE_WEIGHTS = {"identified": 4, "reception": 3, "registered": 6, "assessed": 8, "tracing": 5, "reunified": 6,
                 "follow_up": 40, "closure_pending": 3, "closed": 20, "missing": 5}
PASSWORD = "bench password, fictional"


def build_app(path: Path):
    from config import TestingConfig
    from server import create_app

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{path}"
    return create_app(config)


def migrate():
    from flask_migrate import upgrade

    from models import db

    upgrade()
    db.create_all()  # any table a parallel change added before the migration was regenerated


def insert_rows(n_children: int, n_followups: int, today: date, rng: random.Random) -> tuple:
    """Bulk insert through Core. Returns (manager, a child id to open)."""
    from models import Alert, Child, Followup, StageTransition, User, db
    from models.children import case_code_for

    manager = User(username="bench.manager", role="manager", display_name="Bench manager")
    manager.set_password(PASSWORD)
    caseworkers = []
    for i in range(40):
        cw = User(username=f"bench.cw{i:02d}", role="caseworker")
        cw.set_password(PASSWORD)
        caseworkers.append(cw)
    db.session.add_all([manager, *caseworkers])
    db.session.commit()
    cw_ids = [cw.id for cw in caseworkers]

    stages, weights = zip(*STAGE_WEIGHTS.items(), strict=True)
    children, transitions, child_ids = [], [], []
    seen_codes = set()
    while len(children) < n_children:
        child_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        code = case_code_for(child_id)
        if code in seen_codes:
            continue
        seen_codes.add(code)
        stage = rng.choices(stages, weights)[0]
        identified = today - timedelta(days=rng.randint(30, 1500))
        since = identified + timedelta(days=rng.randint(0, 25))
        sex = rng.choice(("female", "female", "male", "male", "male", "other"))
        children.append({
            "id": child_id, "case_code": code, "sex": sex, "given_name": f"Bench{len(children)}",
            "family_name": "Fictional", "birth_year": today.year - rng.randint(8, 20),
            "district": rng.choice(DISTRICTS), "caseworker_id": rng.choice(cw_ids),
            "risk_level": rng.choice(("high", "medium", "low", "none")), "stage": stage, "stage_since": since,
            "identified_on": identified, "child_mother": sex == "female" and rng.random() < 0.15,
            "disability": False, "unaccompanied": rng.random() < 0.2, "needs_review": rng.random() < 0.01,
            "version": 1, "seq": 0,
        })
        transitions.append({"id": uuid.uuid4(), "child_id": child_id, "from_stage": None,
                            "to_stage": "identified", "occurred_on": identified, "version": 1, "seq": 0})
        if stage != "identified":
            transitions.append({"id": uuid.uuid4(), "child_id": child_id, "from_stage": "identified",
                                "to_stage": stage, "occurred_on": since, "version": 1, "seq": 0})
        child_ids.append(child_id)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(Child.__table__.insert(), children)
        conn.execute(StageTransition.__table__.insert(), transitions)
    print(f"  inserted {len(children):,} children and {len(transitions):,} transitions "
          f"in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    batch = []
    # Like a running programme: old follow-ups were done or missed; scheduled ones are in the future or
    # overdue by up to two months (the scheduler marks older ones missed).
    old_statuses = ("done",) * 16 + ("missed",) * 3 + ("cancelled",)
    caseworker_of = {c["id"]: c["caseworker_id"] for c in children}
    alerts = []

    def alert(followup, rule, severity, recipient):
        alerts.append({"id": uuid.UUID(int=rng.getrandbits(128), version=4), "rule": rule, "severity": severity,
                       "key": f"{followup['id'].hex}:{rule}:{recipient.hex}",
                       "child_id": followup["child_id"], "followup_id": followup["id"], "recipient_id": recipient,
                       "due_on": followup["due_on"], "status": rng.choice(("open", "open", "acknowledged")),
                       "version": 1, "seq": 0})

    with db.engine.begin() as conn:
        for i in range(n_followups):
            due = today + timedelta(days=rng.randint(-900, 60))
            if due >= today:
                status = "scheduled"
            elif due >= today - timedelta(days=60):
                status = rng.choice(("done", "scheduled"))
            else:
                status = rng.choice(old_statuses)
            done = status == "done"
            batch.append({
                "id": uuid.UUID(int=rng.getrandbits(128), version=4), "child_id": child_ids[i % len(child_ids)],
                "kind": "visit", "due_on": due, "status": status,
                "completed_on": due + timedelta(days=rng.randint(-2, 6)) if done else None,
                "seen": True if done else None, "version": 1, "seq": 0,
            })
            # The scan's alerts for what is overdue: the caseworker's, the managers' escalation a week on,
            # and now and then a danger report.
            if status == "scheduled" and due < today:
                alert(batch[-1], "visit_overdue", "warning", caseworker_of[batch[-1]["child_id"]])
                if due < today - timedelta(days=7):
                    alert(batch[-1], "visit_escalated", "warning", manager.id)
                if rng.random() < 0.01:
                    alert(batch[-1], "danger_reported", "urgent", manager.id)
            if len(batch) == 50_000:
                conn.execute(Followup.__table__.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(Followup.__table__.insert(), batch)
        for i in range(0, len(alerts), 50_000):
            conn.execute(Alert.__table__.insert(), alerts[i:i + 50_000])
    print(f"  inserted {n_followups:,} follow-ups and {len(alerts):,} alerts in {time.perf_counter() - started:.1f} s")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return manager, child_ids[len(child_ids) // 2]


def sign_in(client, username: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"sign-in failed: {response.status_code}")


def time_page(client, url: str, runs: int) -> tuple[float, float]:
    response = client.get(url)  # warm: templates compiled, caches filled
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95


def slowest_queries(app, client, url: str, top: int = 3) -> list[tuple[float, str]]:
    """Time every SQL statement of one request to ``url``: where a slow page spends its time."""
    from sqlalchemy import event

    from models import db

    timings, started = [], {}

    def before(conn, cursor, statement, parameters, context, executemany):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        timings.append(((time.perf_counter() - started.pop(id(cursor), time.perf_counter())) * 1000,
                        " ".join(statement.split())))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return sorted(timings, reverse=True)[:top]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--followups", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database", type=Path,
                        help="SQLite file to build once and reuse on later runs (default: a temporary one)")
    parser.add_argument("--queries", action="store_true", help="also print each page's slowest SQL statements")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        run(args, args.database or Path(folder) / "bench.sqlite")


def run(args, path: Path):
    from models import Child, User, db, utcnow

    rng = random.Random(11)
    today = utcnow().date()
    reuse = path.exists()
    app = build_app(path)
    with app.app_context():
        if reuse:
            print(f"Reusing {path}")
            manager_name = "bench.manager"
            count = db.session.execute(db.select(db.func.count()).select_from(Child)).scalar_one()
            child_id = db.session.execute(db.select(Child.id).order_by(Child.case_code).offset(count // 2)).scalar()
            if not db.session.execute(db.select(User.id).where(User.username == manager_name)).first():
                raise SystemExit(f"{path} was not built by this benchmark; remove it")
        else:
            migrate()
            print(f"Building {args.children:,} children and {args.followups:,} follow-ups (fictional)…")
            manager, child_id = insert_rows(args.children, args.followups, today, rng)
            manager_name = manager.username
    client = app.test_client()
    sign_in(client, manager_name)
    pages = [
        ("dashboard", "/", args.runs),
        ("children, first page", "/children", args.runs),
        ("children, filtered", "/children?district=Gulu&sex=female&phase=reintegration&sort=-stage_since",
         args.runs),
        ("child page", f"/children/{child_id}", args.runs),
        ("alerts", "/alerts", args.runs),
        # A year of indicators scans the year's transitions and follow-ups: fewer runs.
        ("reports (one year)", f"/reports?start={today.year - 1}-01-01&end={today.year - 1}-12-31",
         max(3, args.runs // 6)),
    ]
    print(f"\n{'page':<24} {'median ms':>10} {'p95 ms':>10} {'runs':>6}   (Flask test client)")
    for name, url, runs in pages:
        median, p95 = time_page(client, url, runs)
        print(f"{name:<24} {median:>10.1f} {p95:>10.1f} {runs:>6}")
    print("\nTarget: dashboard median ≤ 150 ms (DESIGN §9).")
    if args.queries:
        for name, url, _ in pages:
            print(f"\nSlowest statements of {name}:")
            for ms, statement in slowest_queries(app, client, url):
                print(f"  {ms:8.1f} ms  {statement[:300]}")


if __name__ == "__main__":
    main()
