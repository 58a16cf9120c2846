"""A live Homecoming site for the browser tests: a migrated SQLite file with the demo data, users with
known passwords and a few children each test step needs, served by waitress in its own process.

Every name here is fictional. The hostile child name checks that output is escaped everywhere.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import Page

from tests.server_process import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE_NAME = "<script>alert(1)</script>"
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "artifacts" / "screenshots"


@dataclass
class Site:
    server: ServerProcess
    database_url: str
    users: dict[str, str] = field(default_factory=dict)  # role-ish name -> username
    tokens: dict[str, str] = field(default_factory=dict)  # device name -> token (two devices of cw1)
    children: dict[str, str] = field(default_factory=dict)  # purpose -> child id
    codes: dict[str, str] = field(default_factory=dict)  # purpose -> case code

    @property
    def url(self) -> str:
        return self.server.url


def build_database(database_url: str) -> tuple[dict, dict, dict, dict]:
    """Migrate, seed demo data, and add the users, children and devices the steps use. Returns their
    names, ids, case codes and device tokens."""
    from flask_migrate import upgrade

    from config import TestingConfig
    from models import Actor, db, utcnow
    from models.records import transition
    from server import create_app
    from server.cli.demo import seed
    from sync.devices import enroll_device
    from tests.factories import make_child, make_user

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    app = create_app(config)
    with app.app_context():
        upgrade()
        seed(40)
        manager = make_user("manager", username="browser.manager", display_name="Browser manager")
        cw1 = make_user("caseworker", username="browser.cw1")
        cw2 = make_user("caseworker", username="browser.cw2")
        analyst = make_user("analyst", username="browser.analyst")
        make_user("admin", username="browser.admin")
        boss = Actor(user=manager, source="web")
        today = utcnow().date()
        start = today - timedelta(days=500)
        mover = make_child(cw1, boss, given_name="Fictional", family_name="Mover", district="Lamwo",
                           identified_on=today - timedelta(days=20))
        hostile = make_child(cw1, boss, given_name=HOSTILE_NAME, family_name=HOSTILE_NAME, district="Kitgum",
                             identified_on=today - timedelta(days=30))
        others = make_child(cw2, boss, given_name="Fictional", family_name="Elsewhere", district="Pader",
                            identified_on=today - timedelta(days=30))
        closing = make_child(cw1, boss, given_name="Fictional", family_name="Closing", district="Gulu",
                             identified_on=start)
        day = start
        for stage in ("registered", "assessed", "reunified", "follow_up", "closure_pending"):
            day += timedelta(days=80)
            transition(closing, stage, boss, occurred_on=day, today=today,
                       reason="Fictional: stable at home and in school." if stage == "closure_pending" else None)
        contested = make_child(cw1, boss, given_name="Fictional", family_name="Contested", district="Agago",
                               identified_on=today - timedelta(days=40))
        tokens = {name: enroll_device(cw1, f"Fictional phone {name}", by=manager)[1] for name in ("a", "b")}
        db.session.commit()
        users = {"manager": manager.username, "cw1": cw1.username, "cw2": cw2.username,
                 "analyst": analyst.username, "admin": "browser.admin"}
        children = {"mover": str(mover.id), "hostile": str(hostile.id), "others": str(others.id),
                    "closing": str(closing.id), "contested": str(contested.id)}
        codes = {"mover": mover.case_code, "hostile": hostile.case_code, "others": others.case_code,
                 "closing": closing.case_code, "contested": contested.case_code}
        db.engine.dispose()
    return users, children, codes, tokens


def start_site(folder: Path) -> Site:
    database_url = f"sqlite:///{folder / 'browser.sqlite'}"
    users, children, codes, tokens = build_database(database_url)
    server = ServerProcess(database_url, log_path=folder / "server.log").start()
    return Site(server, database_url, users=users, children=children, codes=codes, tokens=tokens)


def sign_in(page: Page, site: Site, username: str) -> None:
    from tests.factories import PASSWORD

    page.goto(site.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def today() -> date:
    from datetime import UTC, datetime

    return datetime.now(UTC).date()
