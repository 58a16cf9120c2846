"""The field app on a full caseload, in headless Chromium (issue 9; targets: first sync to usable
<= 10 s, offline open to the list <= 1 s).

    .venv/bin/python bench/field_bench.py [--database /tmp/field_bench.sqlite] [--children 500] [--runs 3]

Builds (once, kept in --database) bench/sync_bench.py's caseload: per child the child, its first
stage transition, 2 consents, 3 assessments, 3 services and 10 visits (500 children: 10,000 records),
pushed through the real endpoint by the reference client. Serves it with waitress in its own process
and, per run, in a fresh phone profile (390 px, Debian's Chromium):

- first sync: enrol a new device from its QR text (PIN derivation, key wrapping, token check), pull
  the caseload page by page into IndexedDB (every value sealed), and list the children: until
  ``children()`` returns the whole caseload;
- offline open: with the network cut, a new page load served by the Service Worker, the engine
  imported, the PIN entered (600,000 PBKDF2 rounds) and the caseload listed (decrypted, sorted):
  from navigation start to the list in hand.

Prints the median and best of --runs for both, and what a phone downloads for the caseload: the
shell (every file the Service Worker precaches, as served: uncompressed) plus the first pull's pages
as sent (gzip). The issue's size target is for 50 children: `--children 50 --database <new file>`.
Fictional data only.
"""

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync_bench import enrol, migrate, queue_caseload  # noqa: E402
from sync.client import SyncClient  # noqa: E402
from tests.browser.field_site import chromium, phone  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from tests.sync_devices import PASSPHRASE, FlaskTransport  # noqa: E402

USERNAME = "bench.field"
PIN = "135792"


def build(url: str, children: int) -> None:
    app = migrate(url)
    (token,), _ = enrol(app, USERNAME)
    client = SyncClient("http://bench", token, tempfile.mktemp(suffix=".sqlite"), passphrase=PASSPHRASE,
                        transport=FlaskTransport(app.test_client()))
    client.db.execute("PRAGMA synchronous=OFF")
    queue_caseload(client, USERNAME, children)
    report = client.push()
    assert report.rejected == 0, client.failed()[:3]
    client.wipe()
    with app.app_context():
        from models import db

        db.engine.dispose()


def enrolment_text(url: str, base_url: str) -> str:
    from urllib.parse import urlencode

    from bench.sync_bench import make_app
    from models import User, db
    from sync.devices import enroll_device

    app = make_app(url)
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == USERNAME)).scalar_one()
        token = enroll_device(user, "bench field phone", by=None)[1]
        db.session.commit()
        db.engine.dispose()
    return "homecoming:enrol?" + urlencode({"server": base_url, "token": token})


FIRST_SYNC = """async ([text, pin]) => {
  const t0 = performance.now();
  const e = await import('/field/js/engine.js');
  await e.enrol(text, pin);
  const report = await e.sync();
  const list = await e.children();
  return {seconds: (performance.now() - t0) / 1000, pulled: report.pulled, children: list.length};
}"""

OFFLINE_OPEN = """async (pin) => {
  const e = await import('/field/js/engine.js');
  await e.unlock(pin);
  const list = await e.children();
  // From the start of the page load: the Service Worker's answer, the modules, the PIN, the list.
  return {seconds: performance.now() / 1000, children: list.length, first: list[0].case_code};
}"""


def download_bytes(server: ServerProcess, url: str) -> tuple[int, int]:
    """The shell's bytes (the precache list, fetched as a phone would) and the first pull's, gzip."""
    import json
    import re
    import urllib.request
    from urllib.parse import parse_qs, urlsplit

    def get(path, token=None):
        headers = {"Accept-Encoding": "gzip"} | ({"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=headers)) as answer:
            return answer.read(), answer.headers.get("Content-Encoding")

    worker, _ = get("/field/sw.js")
    precache = json.loads(re.search(rb"(\[\s*\"\./\".*?\])", worker, re.S).group(1))
    shell = len(worker) + sum(len(get("/field/" + name.removeprefix("./"))[0]) for name in precache)
    token = parse_qs(urlsplit(enrolment_text(url, server.url)).query)["token"][0]
    pulled, cursor = 0, None
    while True:
        body, encoding = get("/api/v1/sync/pull?limit=500" + (f"&cursor={cursor}" if cursor else ""), token)
        pulled += len(body)
        page = json.loads(gzip.decompress(body) if encoding == "gzip" else body)
        if not page["has_more"]:
            return shell, pulled
        cursor = page["cursor"]


def one_run(browser, server: ServerProcess, url: str) -> tuple[dict, dict]:
    context = phone(browser)
    context.set_default_timeout(120_000)
    try:
        page = context.new_page()
        page.goto(server.url + "/field/")  # the app installs its Service Worker
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        page.goto(server.url + "/field/vocab.json")  # a page without the UI's own sync calls
        first = page.evaluate(FIRST_SYNC, [enrolment_text(url, server.url), PIN])
        context.set_offline(True)
        opened = context.new_page()
        opened.goto(server.url + "/field/vocab.json")
        offline = opened.evaluate(OFFLINE_OPEN, PIN)
        return first, offline
    finally:
        context.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=str(Path(tempfile.gettempdir()) / "field_bench.sqlite"))
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = f"sqlite:///{args.database}"
    if not Path(args.database).exists():
        started = time.perf_counter()
        build(url, args.children)
        print(f"built {args.children} children in {time.perf_counter() - started:.1f} s ({args.database})")
    server = ServerProcess(url, log_path=Path(tempfile.gettempdir()) / "field_bench_server.log").start()
    firsts, offlines = [], []
    try:
        with chromium() as browser:
            for _ in range(args.runs):
                first, offline = one_run(browser, server, url)
                assert first["children"] == offline["children"], (first, offline)
                firsts.append(first["seconds"])
                offlines.append(offline["seconds"])
                print(f"  run: first sync {first['seconds']:.2f} s ({first['pulled']} records, "
                      f"{first['children']} children); offline open {offline['seconds']:.2f} s")
        shell, pulled = download_bytes(server, url)
    finally:
        server.stop()

    def line(name, values, target):
        median = statistics.median(values)
        verdict = "met" if median <= target else "MISSED"
        return f"{name}: median {median:.2f} s, best {min(values):.2f} s (target <= {target:g} s: {verdict})"

    print(f"Field app, {first['children']} children / {first['pulled']} records, headless Chromium, {args.runs} run(s)")
    print(line("first sync to usable", firsts, 10))
    print(line("offline open to the list", offlines, 1))
    total = shell + pulled
    print(f"download: shell {shell / 1024:.0f} KB + first pull {pulled / 1024:.0f} KB gzip = {total / 1024:.0f} KB "
          f"for {first['children']} children (target for 50 children <= 1 MB"
          + (f": {'met' if total <= 1 << 20 else 'MISSED'})" if first["children"] <= 50 else ")"))


if __name__ == "__main__":
    main()
