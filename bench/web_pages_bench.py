"""The other manager pages at scale: deep pages, filters, follow-ups, alerts, approvals, conflicts.

    .venv/bin/python bench/web_pages_bench.py [--database /tmp/web_bench.sqlite] [--runs 15]

Uses the data and helpers of ``bench/web_bench.py`` (100,000 children, 1,000,000 follow-ups on
SQLite); with ``--database`` the file is built once and reused, as there. Prints median and 95th
percentile per page (Flask test client, after one warm-up request).
"""

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import web_bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--followups", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database", type=Path, help="SQLite file to build once and reuse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(args, args.database or Path(folder) / "bench.sqlite")


def run(args, path: Path):
    from models import Child, User, db, utcnow

    app = web_bench.build_app(path)
    with app.app_context():
        # Connecting creates an empty SQLite file: look for the tables, not the file.
        if not db.inspect(db.engine).has_table("user") or not db.session.execute(
                db.select(User.id).where(User.username == "bench.manager")).first():
            web_bench.migrate()
            print(f"Building {args.children:,} children and {args.followups:,} follow-ups (fictional)…")
            web_bench.insert_rows(args.children, args.followups, utcnow().date(), random.Random(11))
        total = db.session.execute(db.select(db.func.count()).select_from(Child)).scalar_one()
        code = db.session.execute(db.select(Child.case_code).order_by(Child.case_code)
                                  .offset(total // 3)).scalar()
        caseworker = db.session.execute(db.select(User.username).where(User.role == "caseworker")
                                        .order_by(User.username)).scalars().first()
    client = app.test_client()
    web_bench.sign_in(client, "bench.manager")
    deep = max(1, total // 50 * 3 // 4)
    pages = [
        (f"children, page {deep}", f"/children?page={deep}"),
        ("children, age band + risk", "/children?age_band=15_17&risk_level=high"),
        ("children, case code search", f"/children?q={code}"),
        ("children, one caseworker", f"/children?caseworker={caseworker}&sort=-updated_at"),
        ("follow-ups (all due)", "/followups"),
        ("follow-ups, one caseworker", f"/followups?when=overdue&caseworker={caseworker}&district=Gulu"),
        ("alerts", "/alerts"),
        ("approvals", "/approvals"),
        ("reports, managers' internal view", "/reports?view=internal"),
        ("conflicts", "/conflicts"),
    ]
    print(f"\n{'page':<28} {'median ms':>10} {'p95 ms':>10} {'runs':>6}   (Flask test client)")
    for name, url in pages:
        median, p95 = web_bench.time_page(client, url, args.runs)
        print(f"{name:<28} {median:>10.1f} {p95:>10.1f} {args.runs:>6}")


if __name__ == "__main__":
    main()
