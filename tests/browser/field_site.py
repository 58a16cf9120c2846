"""A live site for the field app's browser tests (issue 9): a migrated database with a caseworker
``field.cw`` and a manager ``field.manager`` (password ``tests.factories.PASSWORD``), a few fictional
children of field.cw with a visit due today, one overdue and an open alert, and one device enrolled to
field.cw whose enrolment text (the QR payload) the tests paste into the app. Served by a real waitress
process (tests/server_process.py), driven by Debian's Chromium through Playwright.

Every name here is fictional.
"""

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from tests.browser.live_site import CHROMIUM, CHROMIUM_ARGS
from tests.server_process import ServerProcess

CASEWORKER = "field.cw"
MANAGER = "field.manager"
# Names the at-rest tests look for in every IndexedDB value: none may appear in clear.
CHILD_NAMES = {"due": ("Fictional", "Achola"), "overdue": ("Fictional", "Okwera"), "alerted": ("Fictional", "Lakot")}
PHONE_VIEWPORT = {"width": 390, "height": 844}


@dataclass
class FieldSite:
    server: ServerProcess
    database_url: str
    enrolment: str  # homecoming:enrol?server=...&token=...
    token: str
    device_id: str
    children: dict[str, str] = field(default_factory=dict)  # purpose -> child id
    codes: dict[str, str] = field(default_factory=dict)  # purpose -> case code
    followups: dict[str, str] = field(default_factory=dict)  # "today" / "overdue" -> followup id
    alert_id: str = ""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app_url(self) -> str:
        return self.server.url + "/field/"

    def app(self):
        """A Flask app on the site's database, for tests that look at (or change) the server's side."""
        from config import TestingConfig
        from server import create_app

        config = TestingConfig()
        config.SQLALCHEMY_DATABASE_URI = self.database_url
        config.BASE_URL = self.url
        return create_app(config)


def build_database(database_url: str, base_url: str) -> dict:
    from flask_migrate import upgrade

    from config import TestingConfig
    from models import Actor, db, utcnow
    from models.records import create_record
    from server import create_app
    from server.web.device_pages import enrolment_text
    from sync.devices import enroll_device
    from tests.factories import make_child, make_user, walk

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.BASE_URL = base_url
    app = create_app(config)
    with app.app_context():
        upgrade()
        manager = make_user("manager", username=MANAGER, display_name="Field manager")
        cw = make_user("caseworker", username=CASEWORKER, display_name="Field caseworker")
        boss = Actor(user=manager, source="web")
        today = utcnow().date()
        children = {}
        for purpose, (given, family) in CHILD_NAMES.items():
            child = make_child(cw, boss, given_name=given, family_name=family, district="Kitgum",
                               identified_on=today - timedelta(days=200), village="Fictional village")
            walk(child, ["registered", "assessed", "reunified", "follow_up"], boss,
                 start=today - timedelta(days=150), step_days=20)
            children[purpose] = child
        visit = {"kind": "visit", "status": "scheduled"}
        followups = {
            "today": create_record("followup", {**visit, "child_id": children["due"].id, "due_on": today}, boss),
            "overdue": create_record("followup", {**visit, "child_id": children["overdue"].id,
                                                  "due_on": today - timedelta(days=9)}, boss),
        }
        alert = create_record("alert", {"key": f"{children['alerted'].id}:field", "rule": "visit_overdue",
                                        "severity": "urgent", "child_id": children["alerted"].id,
                                        "recipient_id": cw.id, "due_on": today}, boss)
        device, token = enroll_device(cw, "Fictional field phone", by=manager)
        db.session.commit()
        built = {
            "enrolment": enrolment_text(token), "token": token, "device_id": str(device.id),
            "children": {k: str(c.id) for k, c in children.items()},
            "codes": {k: c.case_code for k, c in children.items()},
            "followups": {k: str(f.id) for k, f in followups.items()}, "alert_id": str(alert.id),
        }
        db.engine.dispose()
    return built


def start_field_site(folder: Path, database_url: str | None = None, **server_options) -> FieldSite:
    """Build the database (SQLite in ``folder`` unless a fresh ``database_url`` is given) and serve it."""
    database_url = database_url or f"sqlite:///{folder / 'field.sqlite'}"
    server = ServerProcess(database_url, log_path=folder / "server.log", **server_options)
    built = build_database(database_url, server.url)  # the port is chosen before the start
    server.start()
    return FieldSite(server, database_url, **built)


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)


@contextmanager
def chromium():
    """Debian's Chromium under Playwright (never a downloaded browser)."""
    import playwright.sync_api as playwright_api

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def phone(browser, **options):
    """A fresh phone: its own profile (IndexedDB, Service Worker, caches), a 390 px screen."""
    context = browser.new_context(viewport=PHONE_VIEWPORT, service_workers="allow", **options)
    context.set_default_timeout(20_000)
    return context


READ_IDB = """async () => {
  const out = {};
  for (const {name} of await indexedDB.databases()) {
    const db = await new Promise((ok, ko) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result);
                                                 r.onerror = () => ko(r.error); });
    out[name] = {};
    for (const store of db.objectStoreNames) {
      out[name][store] = await new Promise((ok, ko) => {
        const tx = db.transaction(store); const s = tx.objectStore(store); const rows = [];
        const c = s.openCursor();
        c.onsuccess = () => { const cur = c.result; if (!cur) return ok(rows);
          rows.push({key: cur.key, value: cur.value}); cur.continue(); };
        c.onerror = () => ko(c.error);
      });
    }
    db.close();
  }
  return JSON.stringify(out, (k, v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v)
    ? {bytes: Array.from(new Uint8Array(v.buffer || v, v.byteOffset || 0, v.byteLength))} : v);
}"""


def read_idb(page) -> dict:
    """Every IndexedDB database of the page's origin, every store, every row, as JSON."""
    return json.loads(page.evaluate(READ_IDB))


def idb_text(page) -> str:
    """The whole of IndexedDB as one string, for "is this name anywhere in it" checks."""
    return json.dumps(read_idb(page), ensure_ascii=False)
