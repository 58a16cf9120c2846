"""``flask demo seed``: fictional children for demonstrations and benchmarks. No real person is in it."""

import random
import secrets
import uuid
from datetime import date, timedelta

import click
from flask.cli import AppGroup

from models import Actor, User, db, utcnow
from models.lifecycle import TRANSITIONS
from models.records import create_child, create_record, transition, update_record
from models.vocab import ASSESSMENT_KINDS, HOW_LEFT, RISK_LEVELS, SERVICE_TYPES

DISTRICTS = ("Kitgum", "Lamwo", "Pader", "Agago", "Gulu")
GIVEN = ("Akello", "Okello", "Atim", "Ocen", "Aber", "Opio", "Lakica", "Ojok", "Apio", "Komakech",
         "Adong", "Odong", "Auma", "Oryem", "Lamunu", "Kidega", "Acan", "Ongom", "Amony", "Olanya")
FAMILY = ("Demo-Acire", "Demo-Otto", "Demo-Lanek", "Demo-Okot", "Demo-Abalo", "Demo-Oloya", "Demo-Anywar")
VILLAGES = ("Fictional Pabo", "Fictional Lukome", "Fictional Paicho", "Fictional Atiak", "Fictional Orom")
# A plausible path through the lifecycle for the happy case; each child stops somewhere along it.
PATH = ("reception", "registered", "assessed", "tracing", "reunified", "follow_up", "closure_pending", "closed")
DEMO_USERS = (("demo.manager", "manager"), ("demo.cw1", "caseworker"), ("demo.cw2", "caseworker"),
              ("demo.cw3", "caseworker"), ("demo.analyst", "analyst"))


demo = AppGroup("demo", help="Fictional demonstration data.")


def ensure_demo_users() -> dict[str, str]:
    """Create the demo accounts that do not exist yet; return the passwords of those created."""
    created = {}
    for username, role in DEMO_USERS:
        if db.session.execute(db.select(User.id).where(User.username == username)).first():
            continue
        password = secrets.token_urlsafe(9)
        user = User(username=username, role=role, display_name=f"Demo {role}")
        user.set_password(password)
        db.session.add(user)
        created[username] = password
    db.session.flush()
    return created


def seed_child(rng: random.Random, caseworker: User, manager: User, today: date,
               stop_at: str | None = None) -> None:
    """One child along PATH: to a random point, or exactly to ``stop_at`` (a stage of PATH, "identified",
    or "missing", reached from follow-up)."""
    system = Actor(user=caseworker, source="system")
    boss = Actor(user=manager, source="system")
    start = today - timedelta(days=rng.randint(5, 900))
    sex = rng.choice(("female", "female", "male", "male", "male", "other"))
    child = create_child({
        "given_name": rng.choice(GIVEN), "family_name": rng.choice(FAMILY), "sex": sex,
        "birth_year": today.year - rng.randint(9, 19), "age_estimation_method": "estimated",
        "district": rng.choice(DISTRICTS), "village": rng.choice(VILLAGES),
        "caseworker": caseworker.username, "identified_on": start,
        "child_mother": sex == "female" and rng.random() < 0.2, "unaccompanied": rng.random() < 0.3,
        "armed_group": "Fictional armed group", "how_left": rng.choice(HOW_LEFT),
    }, system, record_id=uuid.UUID(int=rng.getrandbits(128), version=4), today=today)
    if stop_at is None:
        steps = rng.randint(0, len(PATH))
    else:
        steps = 0 if stop_at == "identified" else PATH.index("follow_up" if stop_at == "missing" else stop_at) + 1
    day, stage = start, "identified"
    for to_stage in PATH[:steps]:
        if to_stage not in TRANSITIONS.get(stage, ()):
            continue
        if stop_at is None and to_stage == "reception" and rng.random() < 0.4:
            continue  # community returnees skip interim care
        if stop_at is None and to_stage == "tracing" and rng.random() < 0.3:
            continue
        day = min(today, day + timedelta(days=rng.randint(3, 60)))
        out_of_tracing = (stage, to_stage) == ("tracing", "reunified")  # no demo tracing requests (issue 14)
        actor = boss if to_stage == "closed" or out_of_tracing else system
        kwargs = {"closure_reason": "reintegrated"} if to_stage == "closed" else {}
        if out_of_tracing:
            kwargs["reason"] = "Demo: family verified at the reception centre."
        if to_stage == "closure_pending":
            kwargs["reason"] = "Demo: stable at home and in school."
        transition(child, to_stage, actor, occurred_on=day, today=today, **kwargs)
        stage = to_stage
        if to_stage == "registered":
            for purpose in ("services", "tracing"):
                create_record("consent", {"child_id": child.id, "purpose": purpose, "given_by": "caregiver",
                                          "given_on": day}, system)
        if to_stage == "assessed":
            risk = rng.choice(RISK_LEVELS)
            create_record("assessment", {"child_id": child.id, "kind": rng.choice(ASSESSMENT_KINDS),
                                         "assessed_on": day, "risk_level": risk,
                                         "scores": {"distress": rng.randint(0, 30)}}, system)
            update_record(child, {"risk_level": risk}, system)
        if to_stage == "follow_up":
            create_record("service", {"child_id": child.id, "type": rng.choice(SERVICE_TYPES),
                                      "status": "active", "started_on": day}, system)
    if (stop_at == "missing" or (stop_at is None and rng.random() < 0.05)) and child.stage not in ("closed", "missing"):
        day = min(today, day + timedelta(days=rng.randint(1, 30)))
        transition(child, "missing", system, occurred_on=day, today=today,
                   reason="Demo: not found at home during a visit.")


def seed(children: int, seed_value: int = 7, today: date | None = None, progress=None) -> dict[str, str]:
    today = today or utcnow().date()
    rng = random.Random(seed_value)
    passwords = ensure_demo_users()
    users = {u.username: u for u in db.session.execute(db.select(User)).scalars()}
    caseworkers = [users[name] for name, role in DEMO_USERS if role == "caseworker"]
    manager = users["demo.manager"]
    # The first children stop at each stage in turn, so that every stage is shown whatever the seed.
    every_stage = ("identified", *PATH, "missing")
    for i in range(children):
        stop_at = every_stage[i] if i < len(every_stage) else None
        seed_child(rng, caseworkers[i % len(caseworkers)], manager, today, stop_at)
        if progress:
            progress(1)
    # Follow-ups and alerts as the scheduler would have them by now (issue 4).
    from server.cli.alerts import plan_and_scan

    plan_and_scan(today)
    seed_field_traffic(caseworkers, manager, today)
    return passwords


def seed_field_traffic(caseworkers: list[User], manager: User, today: date) -> None:
    """What a programme's phones leave behind, so every page shows something: a device per caseworker
    (one not seen for a fortnight), a few sync conflicts waiting for a person, and urgent alerts (one
    acknowledged but still open). A fixed handful, whatever the number of children."""
    from models import Alert, Child
    from models.syncstate import Conflict
    from sync.devices import enroll_device

    now = utcnow()
    devices = {}
    for n, caseworker in enumerate(caseworkers, start=1):
        device, _ = enroll_device(caseworker, f"Demo phone {n}", by=manager)
        device.last_seen_at = now - timedelta(days=15 if n == len(caseworkers) else n)
        devices[caseworker.id] = device
    open_cases = db.session.execute(
        db.select(Child).where(Child.stage.in_(("assessed", "reunified", "follow_up")), Child.deleted_at.is_(None))
        .order_by(Child.case_code).limit(3)).scalars().all()
    for child, (server, device) in zip(open_cases, (("high", "medium"), ("low", "high"), ("medium", "none")),
                                       strict=False):
        db.session.add(Conflict(
            child_id=child.id, entity="child", record_id=child.id, device_id=devices[child.caseworker_id].id,
            user_id=child.caseworker_id, base_version=child.version, server_version=child.version + 1,
            fields=["risk_level"], base_values={"risk_level": child.risk_level},
            server_values={"risk_level": server}, device_values={"risk_level": device}))
    urgent = db.session.execute(db.select(Alert).where(Alert.severity == "urgent")).scalars().all()
    for child in open_cases[len(urgent):2]:
        create_record("alert", {"key": f"{child.id.hex}:danger_reported:demo:{manager.id.hex}",
                                "rule": "danger_reported", "severity": "urgent", "child_id": child.id,
                                "recipient_id": manager.id, "due_on": today}, Actor(user=None, source="system"))
    first = db.session.execute(db.select(Alert).where(Alert.severity == "urgent").order_by(Alert.key)).scalars().first()
    if first is not None:
        update_record(first, {"status": "acknowledged", "acknowledged_by_id": manager.id}, Actor(user=manager, source="system"))
    db.session.flush()


@demo.command("seed")
@click.option("--children", default=60, show_default=True, type=click.IntRange(1, 200_000))
@click.option("--seed", "seed_value", default=7, show_default=True, help="Random seed, for repeatable data.")
def seed_command(children, seed_value):
    """Load fictional children across Kitgum, Lamwo, Pader, Agago and Gulu, in every stage."""
    with click.progressbar(length=children, label="Seeding fictional children") as bar:
        passwords = seed(children, seed_value, progress=bar.update)
    db.session.commit()
    click.echo(f"Seeded {children} fictional children.")
    for username, password in passwords.items():
        click.echo(f"  demo login: {username} / {password}")
