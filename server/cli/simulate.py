"""``flask sync simulate``: simulated caseworkers' phones driving a running server, for demos and load.

Each simulated phone is a reference client (``sync.client``) with its own local store. Over D
simulated days every phone registers children, takes them through the lifecycle, records visits and
edits, and syncs at the end of the day, unless it is out of coverage that day (an offline stretch:
the edits wait in its outbox). The caseworkers and their devices are created in the database of the
app this command runs under, which must be the database of the server at ``--url``.
"""

import random
import secrets
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import click
from flask.cli import AppGroup

from models import User, db, utcnow
from sync.client import SyncClient, SyncError, SyncReport
from sync.devices import enroll_device

GIVEN = ("Akello", "Okello", "Atim", "Ocen", "Aber", "Opio", "Lakica", "Ojok", "Apio", "Komakech")
DISTRICTS = ("Kitgum", "Lamwo", "Pader", "Agago", "Gulu")
# The path a simulated case walks, one step at a time, when the caseworker gets to it.
PATH = ("registered", "assessed", "reunified", "follow_up")


@dataclass
class Case:
    id: str
    stage: str = "identified"
    since: date | None = None
    next_visit: date | None = None


@dataclass
class Phone:
    number: int
    username: str
    client: SyncClient
    rng: random.Random
    to_register: int
    cases: list = field(default_factory=list)
    totals: SyncReport = field(default_factory=SyncReport)
    offline_days: int = 0
    errors: list = field(default_factory=list)


def simulated_caseworkers(count: int, per_caseworker: int = 1) -> list[tuple[str, str]]:
    """``count`` newly enrolled device tokens, ``per_caseworker`` to each of ``sim.cw1``, ``sim.cw2`` …
    (created if missing)."""
    out = []
    for n in range(count):
        i = n // per_caseworker + 1
        username = f"sim.cw{i}"
        user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            user = User(username=username, role="caseworker", display_name=f"Simulated caseworker {i}")
            user.set_password(secrets.token_urlsafe(16))  # nobody signs in as a simulated caseworker
            db.session.add(user)
            db.session.flush()
        _device, token = enroll_device(user, f"Simulated phone {n + 1}", by=None)
        out.append((username, token))
    db.session.commit()
    return out


def work_one_day(phone: Phone, day: date, registrations: int) -> None:
    rng, client = phone.rng, phone.client
    for _ in range(registrations):
        sex = rng.choice(("female", "male"))
        child_id = client.record("child", {
            "sex": sex, "given_name": rng.choice(GIVEN), "family_name": "Simulated",
            "district": rng.choice(DISTRICTS), "birth_year": day.year - rng.randint(10, 17),
            "caseworker": phone.username, "identified_on": day.isoformat(),
            "armed_group": "Fictional armed group", "how_left": rng.choice(("escaped", "handed_over")),
        })
        client.record("consent", {"child_id": child_id, "purpose": "services", "given_by": "caregiver",
                                  "given_on": day.isoformat()})
        phone.cases.append(Case(child_id, since=day))
    shared = [c["id"] for c in client.records("child") if c.get("version")]
    if shared and rng.random() < 0.3:
        # Re-scoring a child of the caseload, possibly one another device of the same caseworker is
        # editing too: that is how conflicts arise in the field.
        client.record("child", {"risk_level": rng.choice(("high", "medium", "low"))}, id=rng.choice(shared))
    for case in phone.cases:
        if case.stage != "follow_up" and (day - case.since).days >= 2 and rng.random() < 0.5:
            to_stage = PATH[PATH.index(case.stage) + 1] if case.stage in PATH else PATH[0]
            client.record("stage_transition", {"child_id": case.id, "to_stage": to_stage,
                                               "occurred_on": day.isoformat()})
            case.stage, case.since = to_stage, day
            if to_stage == "assessed":
                risk = rng.choice(("high", "medium", "low"))
                client.record("assessment", {"child_id": case.id, "kind": "psychosocial",
                                             "assessed_on": day.isoformat(), "risk_level": risk,
                                             "scores": {"distress": rng.randint(0, 30)}})
                client.record("child", {"risk_level": risk}, id=case.id)
            if to_stage == "follow_up":
                case.next_visit = day + timedelta(days=rng.randint(3, 10))
        elif case.stage == "follow_up" and case.next_visit and day >= case.next_visit:
            seen = rng.random() < 0.85
            client.record("followup", {
                "child_id": case.id, "kind": "visit", "due_on": case.next_visit.isoformat(), "status": "done",
                "completed_on": day.isoformat(), "seen": seen,
                "not_seen_reason": None if seen else rng.choice(("at_school", "at_work", "moved")),
                "wellbeing": rng.choice(("good", "fair", "poor")) if seen else None,
            })
            case.next_visit = day + timedelta(days=rng.randint(7, 30))


def sync_phone(phone: Phone) -> None:
    try:
        report = phone.client.sync()
    except SyncError as exc:
        phone.errors.append(f"{type(exc).__name__}: {exc}")
        return
    for name in ("pushed", "applied", "duplicates", "conflicts", "rejected", "pulled", "removed", "retries"):
        setattr(phone.totals, name, getattr(phone.totals, name) + getattr(report, name))


def simulate(url: str, devices: int, children: int, days: int, *, seed: int = 1, offline_rate: float = 0.3,
             per_caseworker: int = 1, store_dir: Path | None = None, echo=print) -> list[Phone]:
    tokens = simulated_caseworkers(devices, per_caseworker)
    store_dir = Path(store_dir or tempfile.mkdtemp(prefix="homecoming-sim-"))
    store_dir.mkdir(parents=True, exist_ok=True)
    base = random.Random(seed)
    per_phone = [children // devices + (1 if i < children % devices else 0) for i in range(devices)]
    phones = [Phone(i + 1, username, SyncClient(url, token, str(store_dir / f"phone{i + 1}-{int(time.time())}.sqlite"),
                                                  passphrase=secrets.token_urlsafe(16)),
                    random.Random(base.getrandbits(64)), per_phone[i])
              for i, (username, token) in enumerate(tokens)]
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    register_days = max(1, (days + 1) // 2)  # registrations spread over the first half
    with ThreadPoolExecutor(max_workers=min(devices, 16)) as pool:
        for d in range(days):
            day = start + timedelta(days=d)

            def one_day(phone, d=d, day=day):
                quota = phone.to_register // register_days + (1 if d < phone.to_register % register_days else 0)
                work_one_day(phone, day, quota if d < register_days else 0)
                if d == days - 1 or phone.rng.random() >= offline_rate:
                    sync_phone(phone)
                else:
                    phone.offline_days += 1

            list(pool.map(one_day, phones))
            echo(f"day {d + 1}/{days} ({day.isoformat()}) done")
    return phones


sync_group = AppGroup("sync", help="The sync protocol: simulated field devices.")


@sync_group.command("simulate")
@click.option("--url", required=True, help="Base URL of the running server, e.g. http://127.0.0.1:5000")
@click.option("--devices", default=3, show_default=True, type=click.IntRange(1, 500))
@click.option("--children", default=30, show_default=True, type=click.IntRange(1, 100_000),
              help="Children registered in all, spread over the devices.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 365))
@click.option("--seed", default=1, show_default=True, help="Random seed, for repeatable runs.")
@click.option("--offline-rate", default=0.3, show_default=True, type=click.FloatRange(0, 0.95),
              help="Chance that a phone has no coverage on a given day (its edits wait in the outbox).")
@click.option("--per-caseworker", default=1, show_default=True, type=click.IntRange(1, 10),
              help="Devices per caseworker; with 2 or more, devices sharing a caseload edit the same "
                   "children and conflicts arise.")
@click.option("--store-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the phones keep their local stores (default: a new temporary directory).")
def simulate_command(url, devices, children, days, seed, offline_rate, per_caseworker, store_dir):
    """Drive N simulated caseworkers' phones against a running server (its database must be this app's)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=10) as response:
            response.read()
    except (OSError, ValueError) as exc:
        # Fail at once: the phones would otherwise back off for minutes before giving up.
        raise click.ClickException(f"No Homecoming server answers at {url} ({exc}). Start it first, "
                                   "e.g. `make run`, and pass its address with --url.") from None
    started = time.monotonic()
    phones = simulate(url, devices, children, days, seed=seed, offline_rate=offline_rate,
                      per_caseworker=per_caseworker, store_dir=store_dir, echo=click.echo)
    elapsed = time.monotonic() - started
    total = SyncReport()
    for phone in phones:
        for name in ("pushed", "applied", "duplicates", "conflicts", "rejected", "pulled", "removed", "retries"):
            setattr(total, name, getattr(total, name) + getattr(phone.totals, name))
    click.echo(f"\nSimulated {devices} device(s), {children} children, {days} day(s) in {elapsed:.1f} s")
    click.echo(f"  {'device':<22}{'offline days':>13}{'pushed':>8}{'applied':>8}{'conflicts':>10}"
               f"{'rejected':>9}{'pulled':>8}{'queued':>7}{'failed':>7}")
    for phone in phones:
        t = phone.totals
        click.echo(f"  {f'phone {phone.number} ({phone.username})':<22}{phone.offline_days:>13}{t.pushed:>8}{t.applied:>8}{t.conflicts:>10}"
                   f"{t.rejected:>9}{t.pulled:>8}{len(phone.client.pending()):>7}{len(phone.client.failed()):>7}")
    click.echo(f"  total: {total.pushed} mutations pushed ({total.pushed / elapsed:.0f}/s overall), "
               f"{total.applied} applied, {total.duplicates} duplicate, {total.conflicts} conflict, "
               f"{total.rejected} rejected, {total.pulled} records pulled, {total.retries} retries")
    for phone in phones:
        for failure in phone.client.failed()[:3]:
            click.echo(f"  {phone.username} failed: {failure['entity']} {failure['code']} {failure['message'] or ''}")
        for error in phone.errors:
            click.echo(f"  {phone.username} sync stopped: {error}")
        phone.client.close()
