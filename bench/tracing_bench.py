"""Matching at scale (issue 14): precision and recall on planted duplicates, the full sweep, and one
registration matched against every child, on SQLite or PostgreSQL.

    .venv/bin/python bench/tracing_bench.py [--children 100000] [--requests 20000] [--registrations 20]
        [--postgres postgresql://postgres@127.0.0.1:5432/bench_db]

Builds a fresh database (a temporary SQLite file; with ``--postgres``, that database's public schema is
dropped and made again: give it a database of its own) through the real migrations and bulk-inserts fictional children and
tracing requests (names sealed as in production) drawn from a pool of Acholi names. Some children are
registered twice and some requests are about a registered child; each copy is written with realistic
variation: the O-/A- prefix (Okello/Akello), ch/c (Ochen/Ocen), doubled or single letters, a final vowel
(Atim/Atimo), a space or an apostrophe (La Kwena, Ong'wen), given and family names swapped, an alias in
place of a name, a birth year one or two off, a village misspelt or left out. Then it times the sweep
(indexing every record, blocking, scoring, queueing), prints precision and recall of the queue against
the planted pairs at the default threshold, and times matching one new registration (a planted
duplicate) against all children. Targets: sweep of 100,000 children + 20,000 requests ≤ 60 s; one
registration ≤ 200 ms; recall ≥ 0.9.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Names with the Acholi O-/A- sex prefix (boy's form first), and names without one. Fictional people.
PREFIXED = ["Okello", "Ocen", "Opiyo", "Odong", "Ojok", "Okot", "Oloya", "Ocan", "Otim", "Ouma", "Olanya",
            "Okwera", "Opoka", "Oyet", "Onen", "Ojara", "Odoki", "Okumu", "Olum", "Omona", "Odoch",
            "Obol", "Ongom", "Otto", "Oryem", "Okidi", "Olweny", "Ogwang", "Otema", "Oketch"]
PLAIN = ["Lamunu", "Laker", "Lakica", "Komakech", "Kilama", "Lakwena", "Ongwen", "Kidega", "Obita",
         "Ayaa", "Abalo", "Amony", "Anena", "Aciro", "Lanyero", "Layet", "Lalam", "Kinyera", "Labongo",
         "Rubangakene", "Ociti", "Lagum", "Adokorach", "Nyeko", "Kitara", "Lukwiya", "Opwonya", "Ladwar"]
DISTRICTS = ("Agago", "Amuru", "Gulu", "Kitgum", "Lamwo", "Nwoya", "Omoro", "Pader")
SYLLABLES = ("pa", "la", "ko", "bo", "ge", "ri", "mo", "wi", "tu", "ny", "ca", "dy", "ra", "li", "jo")
GROUPS = ("Fictional Army A", "Fictional Front B", "Fictional Movement C", None, None)


def name_for(rng, sex):
    if rng.random() < 0.55:
        name = rng.choice(PREFIXED)
        return name if sex == "male" else "A" + name[1:]
    return rng.choice(PLAIN)


def vary_word(rng, word: str) -> str:
    """One realistic misspelling of a name."""
    choices = []
    if "ch" in word:
        choices.append(lambda w: w.replace("ch", "c", 1))
    elif "c" in word:
        choices.append(lambda w: w.replace("c", "ch", 1))
    doubles = [i for i in range(len(word) - 1) if word[i] == word[i + 1]]
    if doubles:
        choices.append(lambda w: w[:doubles[0]] + w[doubles[0] + 1:])
    else:
        at = rng.randrange(1, len(word))
        if word[at] in "aeiolkn":
            choices.append(lambda w: w[:at] + w[at] + w[at:])
    if word[-1] in "aeiou":
        choices.append(lambda w: w[:-1])
    else:
        choices.append(lambda w: w + rng.choice("oa"))
    if len(word) > 5:
        cut = rng.randrange(2, len(word) - 2)
        choices.append(lambda w: f"{w[:cut]} {w[cut:].lower()}" if rng.random() < 0.5 else f"{w[:cut]}'{w[cut:]}")
    return rng.choice(choices)(word)


def village(rng):
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def new_person(rng, today: date) -> dict:
    sex = rng.choice(("female", "male"))
    district = rng.choice(DISTRICTS)
    return {"given_name": name_for(rng, sex), "family_name": name_for(rng, sex),
            "other_names": name_for(rng, sex) if rng.random() < 0.3 else None, "sex": sex,
            "birth_year": today.year - rng.randint(8, 19), "district": district,
            "sub_county": f"{district} {rng.choice(('East', 'West', 'North', 'Central'))}",
            "parish": village(rng), "village": village(rng), "armed_group": rng.choice(GROUPS)}


def variant(rng, person: dict, *, from_family: bool) -> dict:
    """The same child written down again, by another caseworker or told by a family member."""
    copy = dict(person)
    names = ["given_name", "family_name"] + (["other_names"] if copy["other_names"] else [])
    for name in rng.sample(names, k=rng.randint(1, len(names))):
        copy[name] = vary_word(rng, copy[name])
    if rng.random() < 0.25:
        copy["given_name"], copy["family_name"] = copy["family_name"], copy["given_name"]
    if copy["other_names"] and rng.random() < 0.2:  # known at home by the alias
        copy["given_name"], copy["other_names"] = copy["other_names"], None
    if rng.random() < 0.4:
        copy["birth_year"] += rng.choice((-2, -1, 1, 2) if from_family else (-1, 1))
    if copy["village"] and rng.random() < 0.3:
        copy["village"] = vary_word(rng, copy["village"])
    for name in ("parish", "sub_county", "village"):
        if rng.random() < (0.5 if from_family else 0.2):
            copy[name] = None
    if rng.random() < 0.6:
        copy["armed_group"] = None
    return copy


def build(n_children: int, n_requests: int, rng: random.Random, today: date):
    """Children (a tenth registered twice) and requests (a third about a registered child)."""
    people, truth = [], set()
    for _ in range(n_children):
        people.append((uuid.uuid4(), new_person(rng, today)))
    children = list(people)
    for child_id, person in rng.sample(people, k=n_children // 10):
        twin = uuid.uuid4()
        children.append((twin, variant(rng, person, from_family=False)))
        truth.add(("child_child", *sorted((child_id, twin), key=str)))
    requests = []
    for index in range(n_requests):
        request_id = uuid.uuid4()
        if index % 3 == 0:
            child_id, person = rng.choice(people)
            requests.append((request_id, variant(rng, person, from_family=True)))
            truth.add(("request_child", request_id, child_id))
        else:
            requests.append((request_id, new_person(rng, today)))
    return children, requests, truth


def insert(children, requests, today: date) -> None:
    from models import Child, db
    from models.children import case_code_for
    from models.tracing import TracingRequest

    now = datetime.now(UTC)
    rows = [{"id": i, "case_code": case_code_for(i), "version": 1, "seq": 0, "created_at": now, "updated_at": now,
             "stage": "registered", "stage_since": today, "identified_on": today, "child_mother": False,
             "disability": False, "unaccompanied": False, "needs_review": False, **person}
            for i, person in children]
    for start in range(0, len(rows), 5000):
        db.session.execute(db.insert(Child), rows[start:start + 5000])
    rows = [{"id": i, "version": 1, "created_at": now, "updated_at": now, "status": "open",
             "inquirer_name": "Fictional Relative", "inquirer_relationship": "mother", **person}
            for i, person in requests]
    for start in range(0, len(rows), 5000):
        db.session.execute(db.insert(TracingRequest), rows[start:start + 5000])
    db.session.commit()


def quality(truth: set, threshold: float) -> tuple[float, float, int]:
    from models import db
    from models.matching import MatchCandidate

    found = set()
    for kind, request_id, child_id, other in db.session.execute(db.select(
            MatchCandidate.kind, MatchCandidate.request_id, MatchCandidate.child_id, MatchCandidate.other_child_id)
            .where(MatchCandidate.score >= threshold)):
        found.add((kind, request_id, child_id) if kind == "request_child" else (kind, *sorted((child_id, other), key=str)))
    hits = len(found & truth)
    return (hits / len(found) if found else 0.0), hits / len(truth), len(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--registrations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database of the bench's own (emptied)")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from config import TestingConfig
    from models import Actor, Child, db
    from models.matching import DEFAULT_THRESHOLD, match_records, sweep
    from models.records import create_child
    from server import create_app

    rng = random.Random(args.seed)
    today = date.today()
    with tempfile.TemporaryDirectory() as folder:
        config = TestingConfig()
        config.SQLALCHEMY_DATABASE_URI = args.postgres or f"sqlite:///{folder}/bench.sqlite"
        app = create_app(config)
        with app.app_context():
            if args.postgres:
                with db.engine.begin() as connection:
                    connection.execute(text("DROP SCHEMA public CASCADE"))
                    connection.execute(text("CREATE SCHEMA public"))
            upgrade()
            print(f"on {db.engine.dialect.name}")
            children, requests, truth = build(args.children, args.requests, rng, today)
            started = time.perf_counter()
            insert(children, requests, today)
            if args.postgres:  # as autovacuum would soon after a bulk load: the planner's statistics
                with db.engine.begin() as connection:
                    connection.execute(text("ANALYZE"))
            print(f"inserted {len(children):,} children ({args.children // 10:,} registered twice) and "
                  f"{len(requests):,} requests ({len(requests) // 3 + (len(requests) % 3 > 0):,} about a registered "
                  f"child) in {time.perf_counter() - started:.1f} s")

            started, cpu = time.perf_counter(), time.process_time()
            result = sweep(DEFAULT_THRESHOLD)
            db.session.commit()
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"full sweep: {took:.1f} s wall, {cpu:.1f} s CPU of this process ({result.reindexed:,} records "
                  f"indexed, {result.pairs:,} blocked pairs scored, {result.queued:,} queued)")
            started = time.perf_counter()
            sweep(DEFAULT_THRESHOLD)
            db.session.commit()
            print(f"second sweep, nothing changed: {time.perf_counter() - started:.1f} s wall")
            # As after a day of sync: some children changed (their version stepped), the scheduled sweep's case.
            touched = [i for i, _ in rng.sample(children, k=min(2000, len(children)))]
            for start in range(0, len(touched), 900):
                db.session.execute(db.update(Child).where(Child.id.in_(touched[start:start + 900]))
                                   .values(version=Child.version + 1))
            db.session.commit()
            started = time.perf_counter()
            result = sweep(DEFAULT_THRESHOLD)
            db.session.commit()
            print(f"sweep after {len(touched):,} children changed: {time.perf_counter() - started:.1f} s wall "
                  f"({result.pairs:,} blocked pairs scored)")
            # Only pairs at or above the default are queued: higher thresholds can be read off the queue.
            for threshold in sorted({DEFAULT_THRESHOLD, 0.9, 0.95}):
                precision, recall, n = quality(truth, threshold)
                mark = "  <- default" if threshold == DEFAULT_THRESHOLD else ""
                print(f"threshold {threshold:.2f}: precision {precision:.3f}, recall {recall:.3f} "
                      f"({n:,} queued, {len(truth):,} planted){mark}")

            actor = Actor(user=None, source="system")
            timings, commits = [], []
            for _, person in rng.sample(children, k=args.registrations):
                child = create_child(variant(rng, person, from_family=False), actor, today=today)
                db.session.commit()
                started = time.perf_counter()
                match_records(child_ids=[child.id], threshold=DEFAULT_THRESHOLD)
                db.session.flush()
                matched = time.perf_counter()
                db.session.commit()
                timings.append((matched - started) * 1000)
                commits.append((time.perf_counter() - matched) * 1000)
            timings.sort()
            print(f"one registration matched against {len(children):,} children and {len(requests):,} requests: "
                  f"median {statistics.median(timings):.0f} ms, worst {timings[-1]:.0f} ms, then its commit "
                  f"median {statistics.median(commits):.0f} ms ({args.registrations} registrations)")


if __name__ == "__main__":
    main()
