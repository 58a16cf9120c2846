"""Alert scan at scale (DESIGN §9): 100,000 active children with their follow-ups, on SQLite.

    .venv/bin/python bench/alerts_bench.py [--children 100000] [--runs 3]

Builds a fresh SQLite database in a temporary folder through the real migrations, bulk-inserts
fictional rows with Core ``executemany`` (no names: the scan never reads them): children in the open
stages with their stage transitions (about six each in reintegration), three past visits each (some missed), one scheduled visit due
anywhere from 60 days ago to 90 days ahead, and a plan review for those in follow-up. Then times the
scan as of today (first pass, committed), and a second pass, printing how many alerts each created.
Targets: first pass ≤ 3 s, second pass creates 0.
"""

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = {"reception": 3, "registered": 5, "assessed": 6, "tracing": 4, "reunified": 10, "follow_up": 65,
          "closure_pending": 7}
RISKS = ("high", "medium", "low", "none")


def build_app(path: Path):
    from config import TestingConfig
    from server import create_app

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{path}"
    return create_app(config)


# How far behind the caseworkers are: the due dates of pending follow-ups, in days from today, and
# how long the children waiting in reception or registration have waited.
PROFILES = {
    # Most visits on time, a tenth or so overdue: what a working programme looks like.
    "typical": {"visit": (-14, 90), "review": (-14, 90), "reception": (1, 100), "registered": (1, 20)},
    # Everything far behind: about 40 % of visits and a quarter of reviews overdue, most escalated.
    "crisis": {"visit": (-60, 90), "review": (-30, 90), "reception": (1, 500), "registered": (1, 500)},
}


def insert_rows(n_children: int, today: date, rng: random.Random, profile: dict) -> dict:
    from models import Child, Followup, StageTransition, User, db
    from models.children import case_code_for

    now = datetime.now(UTC)
    users = [{"id": uuid.uuid4(), "username": f"bench.cw{i:02d}", "role": "caseworker"} for i in range(40)]
    users += [{"id": uuid.uuid4(), "username": f"bench.manager{i}", "role": "manager"} for i in range(3)]
    db.session.execute(db.insert(User), [{**u, "password_hash": "x", "active": True, "token_nonce": "x",
                                          "created_at": now} for u in users])
    caseworkers = [u["id"] for u in users if u["role"] == "caseworker"]
    base = {"version": 1, "seq": 0, "created_at": now, "updated_at": now}
    children, transitions, followups = [], [], []
    stages = rng.choices(list(STAGES), weights=list(STAGES.values()), k=n_children)
    seen_codes = set()
    for stage in stages:
        child_id = uuid.uuid4()
        code = case_code_for(child_id)
        if code in seen_codes:
            continue
        seen_codes.add(code)
        since = today - timedelta(days=rng.randint(*profile.get(stage, (1, 500))))
        children.append({**base, "id": child_id, "case_code": code, "sex": rng.choice(("female", "male")),
                         "stage": stage, "stage_since": since, "caseworker_id": rng.choice(caseworkers),
                         "identified_on": since - timedelta(days=200), "child_mother": False,
                         "disability": False, "unaccompanied": False, "needs_review": False,
                         "risk_level": rng.choice(RISKS),
                         # Ages 10 to 19 this year: the consent-at-18 rule has children to find.
                         "birth_year": today.year - rng.randint(10, 19)})
        row = {**base, "child_id": child_id}
        if stage in ("reception", "registered"):
            kind = "reception_review" if stage == "reception" else "assessment_due"
            followups.append({**row, "id": uuid.uuid4(), "kind": kind, "status": "scheduled", "planned_by_rule": kind,
                              "due_on": since + timedelta(days=84 if stage == "reception" else 7)})
            continue
        if stage not in ("reunified", "follow_up", "closure_pending"):
            continue
        reunified = since - timedelta(days=rng.randint(0, 400))
        # The whole path, as the stage machine records it: about six transitions per child.
        path = [(None, "identified"), ("identified", "registered"), ("registered", "assessed"),
                ("assessed", "reunified"), ("reunified", "follow_up")]
        if stage == "closure_pending":
            path.append(("follow_up", "closure_pending"))
        path = path[:[to for _, to in path].index(stage) + 1]
        for offset, (from_stage, to_stage) in enumerate(path):
            transitions.append({**row, "id": uuid.uuid4(), "from_stage": from_stage, "to_stage": to_stage,
                                "occurred_on": reunified + timedelta(days=(offset - 3) * 20)})
        day = reunified + timedelta(days=14)
        for _ in range(3):
            missed = rng.random() < 0.08
            followups.append({**row, "id": uuid.uuid4(), "kind": "visit", "due_on": day,
                              "status": "missed" if missed else "done",
                              "completed_on": None if missed else day, "seen": None if missed else True,
                              "risk_level": None if missed else rng.choice(RISKS)})
            day += timedelta(days=30)
        followups.append({**row, "id": uuid.uuid4(), "kind": "visit", "status": "scheduled",
                          "planned_by_rule": "next_visit",
                          "due_on": today + timedelta(days=rng.randint(*profile["visit"]))})
        if stage == "follow_up":
            followups.append({**row, "id": uuid.uuid4(), "kind": "plan_review", "status": "scheduled",
                              "planned_by_rule": "plan_review",
                              "due_on": today + timedelta(days=rng.randint(*profile["review"]))})
    for table, rows in ((Child, children), (StageTransition, transitions), (Followup, followups)):
        for start in range(0, len(rows), 20_000):
            db.session.execute(db.insert(table), rows[start:start + 20_000])
    db.session.commit()
    return {"children": len(children), "followups": len(followups), "transitions": len(transitions)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="fresh databases to build and scan")
    parser.add_argument("--profile", choices=PROFILES, default="typical")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from config import RULE_DEFAULTS
    from models import db
    from models.alerting import scan

    today = date.today()
    firsts, seconds = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            app = build_app(Path(tmp) / "bench.sqlite")
            with app.app_context():
                upgrade()
                started = time.perf_counter()
                sizes = insert_rows(args.children, today, random.Random(run), PROFILES[args.profile])
                built = time.perf_counter() - started

                started = time.perf_counter()
                first = scan(today, RULE_DEFAULTS)
                db.session.commit()
                first_s = time.perf_counter() - started

                started = time.perf_counter()
                second = scan(today, RULE_DEFAULTS)
                db.session.commit()
                second_s = time.perf_counter() - started
                counts = Counter(a.rule for a in first.created)
                db.engine.dispose()
        firsts.append(first_s)
        seconds.append(second_s)
        print(f"run {run + 1}: {sizes['children']:,} active children, {sizes['followups']:,} follow-ups "
              f"(built in {built:.1f} s)")
        print(f"  first pass:  {first_s:.2f} s, {len(first.created):,} alerts created")
        print(f"  second pass: {second_s:.2f} s, {len(second.created)} created, {second.resolved} resolved")
        print("  by rule: " + ", ".join(f"{rule} {n:,}" for rule, n in sorted(counts.items())))
    print(f"scan over {args.children:,} active children ({args.profile}), SQLite: first pass median "
          f"{sorted(firsts)[len(firsts) // 2]:.2f} s (target <= 3 s), second pass median "
          f"{sorted(seconds)[len(seconds) // 2]:.2f} s creating 0 (target 0)")


if __name__ == "__main__":
    main()
