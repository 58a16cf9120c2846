"""The field app's engine (issue 9) in headless Chromium against a real server process: each test
imports server/field/static/js/engine.js in a fresh phone profile and drives it through page.evaluate,
then looks at IndexedDB as bytes-on-disk would show it (read_idb) and at the server's database.

The page is /field/vocab.json: same origin, same module and IndexedDB as the app at /field/, without
the UI's own calls (its journeys are tests/test_field_app.py). Every name is fictional.
"""

import gzip
import json
import uuid
from datetime import date

import pytest

from tests.browser.field_site import (
    CASEWORKER,
    CHILD_NAMES,
    MANAGER,
    chromium,
    chromium_available,
    idb_text,
    phone,
    read_idb,
    start_field_site,
)
from tests.conftest import need

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIN = "246810"
# Short backoff: the retry rules are the same, the test does not wait out 30-second caps.
SETUP = """const e = await import('/field/js/engine.js');
e.configure({backoffBase: 0.05, backoffCap: 0.2, maxAttempts: 4});
const code = (p) => p.then(() => null, (err) => ({code: err.code, attemptsLeft: err.attemptsLeft, wiped: err.wiped,
                                               message: err.message}));"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need(chromium_available(), "apt-get install chromium")
    site = start_field_site(tmp_path_factory.mktemp("field-engine"))
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def browser(site):
    with chromium() as browser:
        yield browser


@pytest.fixture
def context(browser):
    context = phone(browser)
    yield context
    context.close()


@pytest.fixture
def page(context, site):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + "/field/vocab.json")
    yield page
    assert errors == []


def run(page, body: str, arg=None):
    return page.evaluate(f"async (arg) => {{ {SETUP}\n{body} }}", arg)


def new_enrolment(site) -> tuple[str, str]:
    """A new device of field.cw (revocation is for life: each test that revokes gets its own)."""
    from models import User, db
    from server.web.device_pages import enrolment_text
    from sync.devices import enroll_device

    app = site.app()
    with app.app_context():
        cw = db.session.execute(db.select(User).filter_by(username=CASEWORKER)).scalar_one()
        boss = db.session.execute(db.select(User).filter_by(username=MANAGER)).scalar_one()
        device, token = enroll_device(cw, f"Fictional phone {uuid.uuid4().hex[:6]}", by=boss)
        db.session.commit()
        text = enrolment_text(token)
        device_id = str(device.id)
        db.engine.dispose()
    return text, device_id


def enrolled(page, site) -> str:
    text, device_id = new_enrolment(site)
    run(page, "await e.enrol(arg.text, arg.pin); return await e.sync();", {"text": text, "pin": PIN})
    return device_id


def on_server(site, fn):
    """Run fn() in an app context on the site's database; commits."""
    from models import db

    app = site.app()
    with app.app_context():
        try:
            result = fn()
            db.session.commit()
            return result
        finally:
            db.session.remove()
            db.engine.dispose()


def mutations_of(site, record_ids):
    from models import db
    from models.syncstate import MutationLog

    ids = [uuid.UUID(i) for i in record_ids]
    return on_server(site, lambda: [(str(m.record_id), m.status) for m in db.session.execute(
        db.select(MutationLog).where(MutationLog.record_id.in_(ids))).scalars()])


# ---------------------------------------------------------------------------------------------- lists

def test_plain_and_restricted_fields_and_case_codes_match_the_python_client(page):
    from sync.client import RESTRICTED_FIELDS, case_code_for
    from sync.client_cipher import PLAIN_FIELDS

    ids = [str(uuid.uuid4()) for _ in range(50)] + ["00000000-0000-4000-8000-000000000000",
                                                     "ffffffff-ffff-4fff-bfff-ffffffffffff"]
    got = run(page, """const s = await import('/field/js/store.js');
        return {plain: s.PLAIN_FIELDS, restricted: s.RESTRICTED_FIELDS, codes: arg.map((id) => e.caseCodeFor(id))};""", ids)
    assert {k: set(v) for k, v in got["plain"].items()} == {k: set(v) for k, v in PLAIN_FIELDS.items()}
    assert {k: list(v) for k, v in got["restricted"].items()} == {k: list(v) for k, v in RESTRICTED_FIELDS.items()}
    assert got["codes"] == [case_code_for(i) for i in ids]


def test_vocab_comes_from_the_models(page):
    from models import lifecycle, vocab

    got = run(page, "return e.vocab();")
    assert got["danger_not_seen_reasons"] == list(vocab.DANGER_NOT_SEEN_REASONS)
    assert got["danger_concerns"] == list(vocab.DANGER_CONCERNS)
    assert got["stages"] == list(lifecycle.STAGES)
    assert "closed" not in got["caseworker_moves"]["closure_pending"]  # a manager's move
    assert got["caseworker_moves"]["assessed"] == ["tracing", "reunified", "missing"]


# ------------------------------------------------------------------------------------------ enrolment

def test_enrolment_refuses_other_servers_weak_pins_bad_codes_and_unknown_tokens(page, site):
    text, _ = new_enrolment(site)
    other = text.replace("server=http%3A%2F%2F127.0.0.1", "server=http%3A%2F%2Fevil.example")
    got = run(page, """return {other: await code(e.enrol(arg.other, '123456')), weak: await code(e.enrol(arg.text, '12345')),
        bad: await code(e.enrol('homecoming:enrol?server=x&token=nonsense', '123456')),
        unknown: await code(e.enrol(arg.text.replace(/token=[^.]+\\./, 'token=' + crypto.randomUUID() + '.'), '123456')),
        status: await e.status()};""", {"text": text, "other": other})
    assert [got[k]["code"] for k in ("other", "weak", "bad", "unknown")] == ["other_server", "weak_pin", "bad_code",
                                                                              "unauthorized"]
    assert got["status"] == {"enrolled": False, "locked": True, "server": None}
    bare = text.split("token=")[1].replace("%2E", ".")
    status = run(page, "await e.enrol(arg, '123456'); return await e.status();", bare)
    assert status["enrolled"] and not status["locked"]


def test_the_fifth_wrong_pin_in_a_row_wipes_the_phone(page, site):
    enrolled(page, site)
    got = run(page, """e.lock(); const tries = [];
        for (let i = 0; i < 4; i++) tries.push(await code(e.unlock('000000')));
        await e.unlock(arg); e.lock();   // a right PIN resets the count
        for (let i = 0; i < 5; i++) tries.push(await code(e.unlock('000000')));
        return {tries, status: await e.status()};""", PIN)
    assert [t["attemptsLeft"] for t in got["tries"][:4]] == [4, 3, 2, 1]
    assert [t["code"] for t in got["tries"][4:]] == ["wrong_pin"] * 4 + ["wiped"]
    assert got["status"]["enrolled"] is False
    assert read_idb(page).get("homecoming-field", {}).get("records", []) == []


def test_lock_drops_the_key_and_idle_time_locks(page, site):
    enrolled(page, site)
    got = run(page, """const events = []; e.onChange((ev) => events.push(ev.type));
        e.lock(); const locked = await code(e.children());
        await e.unlock(arg); e.configure({idleMinutes: 0.005});
        // Reads (and syncs) are not user activity: they do not keep the phone open.
        for (let i = 0; i < 6; i++) { await e.children().catch(() => null); await new Promise((r) => setTimeout(r, 100)); }
        return {locked, events, status: await e.status()};""", PIN)
    assert got["locked"]["code"] == "locked"
    assert got["events"] == ["locked", "locked"] and got["status"]["locked"] is True


# ---------------------------------------------------------------------------------------------- at rest

def test_no_name_and_no_token_in_clear_in_indexeddb(page, site):
    enrolled(page, site)
    run(page, """const id = await e.record('child', {given_name: 'Fictional', family_name: 'Atimango', sex: 'female',
        district: 'Gulu', identified_on: new Date().toISOString().slice(0, 10), armed_group: 'Fictional brigade',
        village: 'Fictional Paicho'});
        await e.record('followup', {child_id: id, kind: 'visit', due_on: new Date().toISOString().slice(0, 10),
        status: 'done', notes: 'Fictional notes Okello'});""")
    names = [n for _, family in CHILD_NAMES.values() for n in (family,)]
    seen = run(page, "return (await e.children()).map((c) => c.family_name);")
    assert set(names) <= set(seen) and "Atimango" in seen  # the engine reads them...
    text = idb_text(page)
    secret = site.token.split(".")[1]
    for value in [*names, "Atimango", "Fictional brigade", "Paicho", "Okello", "Fictional village", secret, CASEWORKER]:
        assert value not in text, f"{value!r} is in IndexedDB in clear"  # ...the store does not hold them in clear
    assert "_sealed" in text


# ------------------------------------------------------------------------------------ offline, exactly once

def test_offline_queue_then_sync_applies_each_mutation_exactly_once(page, context, site):
    enrolled(page, site)
    context.set_offline(True)
    got = run(page, """const day = new Date().toISOString().slice(0, 10);
        const child = await e.record('child', {given_name: 'Fictional', family_name: 'Offline', sex: 'male',
          district: 'Pader', identified_on: day});
        const visits = [];
        for (let i = 0; i < 3; i++) visits.push(await e.record('followup', {child_id: child, kind: 'visit', due_on: day,
          status: 'done', completed_on: day, seen: true, wellbeing: 'good'}));
        await e.record('child', {risk_level: 'medium'}, {id: child});   // merged into the unsent create
        return {child, visits, offline: await code(e.sync()), status: await e.syncStatus(),
                shown: await e.get('child', child)};""")
    assert got["offline"]["code"] == "offline"
    assert got["status"]["pending"] == 4 and got["status"]["lastError"] == "offline"
    assert got["shown"]["_pending"] and got["shown"]["case_code"] == run(page, "return e.caseCodeFor(arg);", got["child"])
    context.set_offline(False)
    report = run(page, "return await e.sync();")
    assert (report["pushed"], report["applied"], report["rejected"]) == (4, 4, 0)
    again = run(page, "return {r: await e.sync(), s: await e.syncStatus(), c: await e.get('child', arg)};", got["child"])
    assert again["r"]["pushed"] == 0 and again["s"]["pending"] == 0 and again["s"]["lastError"] is None
    assert again["c"]["risk_level"] == "medium" and again["c"]["stage"] == "identified" and not again["c"]["_pending"]
    logged = mutations_of(site, [got["child"], *got["visits"]])
    assert sorted(logged) == sorted([(i, "applied") for i in [got["child"], *got["visits"]]])


def test_a_cut_push_is_retried_with_the_same_batch_id_and_applied_once(page, site):
    enrolled(page, site)
    batches = []

    def cut_first_answer(route):
        body = json.loads(gzip.decompress(route.request.post_data_buffer))
        batches.append(body["batch_id"])
        if len(batches) == 1:
            route.fetch()  # the server applies the batch...
            route.fulfill(status=503, headers={"Retry-After": "0"}, body="")  # ...and its answer is lost
        else:
            route.continue_()

    page.route("**/api/v1/sync/push", cut_first_answer)
    got = run(page, """const day = new Date().toISOString().slice(0, 10);
        const ids = [];
        for (let i = 0; i < 5; i++) ids.push(await e.record('child', {given_name: 'Fictional', family_name: 'Retry' + i,
          sex: 'female', district: 'Amuru', identified_on: day}));
        return {ids, report: await e.sync()};""")
    assert len(batches) == 2 and batches[0] == batches[1]
    assert got["report"]["applied"] == 5
    assert sorted(mutations_of(site, got["ids"])) == sorted((i, "applied") for i in got["ids"])
    versions = run(page, "return Promise.all(arg.map(async (id) => (await e.get('child', id)).version));", got["ids"])
    assert versions == [1] * 5


def test_a_refused_batch_is_split_until_the_bad_mutation_is_alone(page, site):
    enrolled(page, site)
    page.route("**/api/v1/sync/push", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"error": {"code": "validation_error", "message": "Fictional envelope refusal.",
                                   "details": {"fields": {"mutations": {"0": {"id": ["Not a valid UUID."]}}}}}}))
        if "Poison" in gzip.decompress(route.request.post_data_buffer).decode() else route.continue_())
    got = run(page, """const day = new Date().toISOString().slice(0, 10); const ids = [];
        for (const name of ['Split0', 'Split1', 'Poison', 'Split3']) ids.push(await e.record('child', {given_name: 'Fictional',
          family_name: name, sex: 'male', district: 'Nwoya', identified_on: day}));
        const report = await e.sync(); const poison = await e.get('child', ids[2]);
        return {ids, report, status: await e.syncStatus(), messages: poison._messages};""")
    assert got["report"]["applied"] == 3 and got["report"]["rejected"] == 1
    assert got["status"]["failed"] == 1 and got["status"]["pending"] == 0
    assert got["messages"][0]["kind"] == "rejected" and got["messages"][0]["code"] == "validation_error"
    page.unroute("**/api/v1/sync/push")
    run(page, "await e.dismiss(arg); return null;", got["messages"][0]["mutation_id"])
    assert run(page, "return await e.get('child', arg);", got["ids"][2]) is None  # a dismissed create leaves


def test_retry_after_is_a_floor_for_the_backoff(page, site):
    enrolled(page, site)
    calls = []

    def busy_once(route):
        calls.append(1)
        if len(calls) == 1:
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "busy", "details": {}}}')
        else:
            route.continue_()

    page.route("**/api/v1/sync/pull*", busy_once)
    took = run(page, "const t = performance.now(); await e.sync(); return performance.now() - t;")
    assert len(calls) == 2 and took >= 1000


def test_a_save_while_a_sync_pulls_is_sent_when_that_sync_ends(page, site):
    """The app asks the sync bar to run after each save; a save made once a sync had pushed (while it
    pulls) was left waiting for the next timer (up to five minutes). The bar now runs once more."""
    enrolled(page, site)
    pending = run(page, """const {syncBar} = await import('/field/js/ui/syncbar.js');
        const bar = syncBar();
        const child = (name) => ({given_name: 'Fictional', family_name: name, sex: 'female', district: 'Gulu',
                                  identified_on: new Date().toISOString().slice(0, 10)});
        await e.record('child', child('Akumu'));
        let pulling;
        const pulled = new Promise((resolve) => { pulling = resolve; });
        const realFetch = window.fetch;
        window.fetch = async (url, options) => {  // hold the first pull long enough to save meanwhile
          if (String(url).includes('/sync/pull') && pulling) {
            pulling();
            pulling = null;
            await new Promise((r) => setTimeout(r, 300));
          }
          return realFetch(url, options);
        };
        const running = bar.run();
        await pulled;
        await e.record('child', child('Alanyo'));
        bar.run();  // what a save asks for (app.js: syncSoon)
        await running;
        window.fetch = realFetch;
        return (await e.syncStatus()).pending;""")
    assert pending == 0

    def family_names():
        from models import Child, db

        return set(db.session.execute(db.select(Child.family_name)).scalars())

    assert {"Akumu", "Alanyo"} <= on_server(site, family_names)


# ---------------------------------------------------------------------------------------------- conflicts

def test_a_conflict_made_on_the_server_while_offline(page, context, site):
    from models import Actor, User, db
    from models.children import Child
    from models.records import update_record

    enrolled(page, site)
    child_id = site.children["due"]
    context.set_offline(True)
    run(page, "await e.record('child', {risk_level: arg.level}, {id: arg.id}); return null;",
        {"id": child_id, "level": "low" if run(page, "return (await e.get('child', arg)).risk_level;", child_id) != "low"
         else "none"})

    def manager_edits():
        child = db.session.get(Child, uuid.UUID(child_id))
        boss = db.session.execute(db.select(User).filter_by(username=MANAGER)).scalar_one()
        update_record(child, {"risk_level": "high" if child.risk_level != "high" else "medium"}, Actor(user=boss, source="web"))
        return child.risk_level

    server_value = on_server(site, manager_edits)
    context.set_offline(False)
    got = run(page, "return {r: await e.sync(), c: await e.get('child', arg), s: await e.syncStatus()};", child_id)
    assert got["r"]["conflicts"] == 1 and got["s"]["conflicts"] == 1
    assert got["c"]["risk_level"] == server_value and got["c"]["needs_review"] is True
    assert [m["kind"] for m in got["c"]["_messages"]] == ["conflict"] and got["c"]["_messages"][0]["fields"] == ["risk_level"]


# ------------------------------------------------------------------------------------------- restricted

def test_the_restricted_profile_leaves_the_phone_once_uploaded(page, site):
    enrolled(page, site)
    got = run(page, """const id = await e.record('child', {given_name: 'Fictional', family_name: 'Profile', sex: 'male',
        district: 'Omoro', identified_on: new Date().toISOString().slice(0, 10), armed_group: 'Fictional unit',
        role_in_group: 'Fictional role', how_left: 'escaped'});
        return {id, before: await e.get('child', id)};""")
    assert got["before"]["armed_group"] == "Fictional unit"
    dump = read_idb(page)["homecoming-field"]
    sealed_before = {r["value"]["fields"]["_sealed"] for r in dump["outbox"]} | {
        r["value"]["view"]["_sealed"] for r in dump["records"] if r["value"]["id"] == got["id"]}
    assert "escaped" not in idb_text(page)  # how_left is restricted: sealed although a choice
    after = run(page, "await e.sync(); return await e.get('child', arg);", got["id"])
    assert not {"armed_group", "role_in_group", "how_left"} & set(after)
    text = idb_text(page)
    assert not any(s in text for s in sealed_before), "a ciphertext that held the profile is still stored"

    def stored():
        from models import db
        from models.children import Child

        child = db.session.get(Child, uuid.UUID(got["id"]))
        return child.armed_group, child.how_left

    assert on_server(site, stored) == ("Fictional unit", "escaped")


# ---------------------------------------------------------------------------------------------- the cursor

def test_an_invalid_cursor_pulls_everything_again(page, site):
    enrolled(page, site)
    before = run(page, "return (await e.children()).length;")
    page.evaluate("""() => new Promise((ok, ko) => { const r = indexedDB.open('homecoming-field');
        r.onsuccess = () => { const t = r.result.transaction('meta', 'readwrite'); t.objectStore('meta').put('Z2FyYmxlZA', 'cursor');
          t.oncomplete = () => { r.result.close(); ok(); }; t.onerror = () => ko(t.error); }; })""")
    report = run(page, "return await e.sync();")
    assert report["pulled"] >= before and run(page, "return (await e.children()).length;") == before


def test_resync_required_removes_what_the_full_pull_did_not_send(page, site):
    from models import Actor, User, db
    from models.followups import Followup
    from models.records import create_record, delete_record

    def planned():
        boss = db.session.execute(db.select(User).filter_by(username=MANAGER)).scalar_one()
        f = create_record("followup", {"child_id": uuid.UUID(site.children["alerted"]), "kind": "plan_review",
                                       "status": "scheduled", "due_on": date(2030, 1, 1)}, Actor(user=boss, source="web"))
        return str(f.id)

    followup_id = on_server(site, planned)
    enrolled(page, site)
    assert run(page, "return await e.get('followup', arg);", followup_id) is not None

    def deleted():
        boss = db.session.execute(db.select(User).filter_by(username=MANAGER)).scalar_one()
        delete_record(db.session.get(Followup, uuid.UUID(followup_id)), Actor(user=boss, source="web"))

    on_server(site, deleted)
    answered = []

    def resync_once(route):
        if "cursor=" in route.request.url and not answered:
            answered.append(route.request.url)
            route.fulfill(status=409, content_type="application/json", body=json.dumps(
                {"error": {"code": "resync_required", "message": "Pull from empty.", "details": {}}}))
        else:
            route.continue_()

    page.route("**/api/v1/sync/pull*", resync_once)
    report = run(page, "return await e.sync();")
    assert answered and report["removed"] >= 1
    assert run(page, "return await e.get('followup', arg);", followup_id) is None
    assert run(page, "return (await e.children()).length;") >= len(CHILD_NAMES)


def test_a_row_read_before_a_pull_stored_a_newer_copy_does_not_hide_the_newer_one(page):
    # A screen reads a row, then awaits the outbox, the messages and the decryption; a sync's pull can
    # store a newer copy in between. The late decryption of the old row must not stand for the record
    # afterwards (it did: a child's new stage missing on the phone after the sync that brought it).
    got = run(page, """const s = await import('/field/js/store.js');
        const key = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
        const store = new s.Store(await s.openStore(), key);
        const id = crypto.randomUUID();
        const report = {pulled: 0, removed: 0};
        const pageOf = (version, stage, village) => ({cursor: `c${version}`, has_more: false, changes: [{entity: 'child',
          id, version, op: 'upsert', data: {id, given_name: 'Fictional', family_name: 'Okwera', stage, village}}]});
        await store.storePage(pageOf(5, 'follow_up', 'Fictional village'), report);
        const read = await store.row('child', id);
        await store.storePage(pageOf(6, 'assessed', 'Fictional hill'), report);
        const late = await store.view(read);
        const now = await store.view(await store.row('child', id));
        return {late: [late.stage, late.village], now: [now.stage, now.village]};""")
    assert got["late"] == ["follow_up", "Fictional village"]  # what that screen read, and only it
    assert got["now"] == ["assessed", "Fictional hill"]  # the stage in clear and a sealed field


# ----------------------------------------------------------------------------------------- revocation

def revoke(site, device_id, wipe):
    from models import User, db
    from sync.devices import Device, revoke_device

    def go():
        boss = db.session.execute(db.select(User).filter_by(username=MANAGER)).scalar_one()
        revoke_device(db.session.get(Device, uuid.UUID(device_id)), by=boss, wipe=wipe)

    on_server(site, go)


def test_revoked_with_wipe_empties_indexeddb(page, site):
    device_id = enrolled(page, site)
    run(page, """await e.record('child', {given_name: 'Fictional', family_name: 'Unsent', sex: 'male', district: 'Gulu',
        identified_on: new Date().toISOString().slice(0, 10)}); return null;""")
    revoke(site, device_id, wipe=True)
    got = run(page, "const events = []; e.onChange((ev) => events.push(ev.type)); "
                    "return {err: await code(e.sync()), events, status: await e.status()};")
    assert got["err"]["code"] == "revoked" and got["err"]["wiped"] is True
    assert got["events"][-2:] == ["revoked", "wiped"] and got["status"]["enrolled"] is False
    # status() opens a new, empty database: nothing of the old one is left.
    assert all(rows == [] for db in read_idb(page).values() for rows in db.values())


def test_revoked_without_wipe_keeps_the_outbox(page, site):
    device_id = enrolled(page, site)
    run(page, """await e.record('child', {given_name: 'Fictional', family_name: 'Kept', sex: 'male', district: 'Gulu',
        identified_on: new Date().toISOString().slice(0, 10)}); return null;""")
    revoke(site, device_id, wipe=False)
    got = run(page, "return {err: await code(e.sync()), s: await e.syncStatus(), st: await e.status()};")
    assert got["err"]["code"] == "revoked" and got["err"]["wiped"] is False
    assert got["s"]["pending"] == 1 and got["s"]["lastError"] == "revoked" and got["st"]["enrolled"]


# ------------------------------------------------------------------------------------------------ danger

def test_a_danger_visit_is_pushed_at_once_before_other_edits(page, site):
    enrolled(page, site)
    pushed = []
    page.route("**/api/v1/sync/push", lambda route: (pushed.append(
        [m["entity"] for m in json.loads(gzip.decompress(route.request.post_data_buffer))["mutations"]]),
        route.continue_()))
    got = run(page, """const day = new Date().toISOString().slice(0, 10);
        await e.record('child', {risk_level: 'low'}, {id: arg.other});          // queued, not urgent
        const id = await e.record('followup', {status: 'missed', completed_on: day, seen: false,
          not_seen_reason: 'abducted'}, {id: arg.followup});
        return {status: await e.syncStatus(), visit: await e.get('followup', id)};""",
        {"other": site.children["overdue"], "followup": site.followups["today"]})
    assert pushed == [["followup"]]
    assert got["status"]["pending"] == 1 and got["visit"]["_pending"] is False


# ----------------------------------------------------------------------------------- other answers

def test_unauthorized_stops_the_sync_and_keeps_the_outbox(page, site):
    enrolled(page, site)
    page.route("**/api/v1/sync/push", lambda route: route.fulfill(
        status=401, content_type="application/json", headers={"WWW-Authenticate": "Bearer"},
        body='{"error": {"code": "unauthorized", "message": "Fictional refusal.", "details": {}}}'))
    got = run(page, """await e.record('child', {risk_level: 'medium'}, {id: arg});
        return {err: await code(e.sync()), s: await e.syncStatus(), st: await e.status()};""", site.children["alerted"])
    assert got["err"]["code"] == "unauthorized" and got["s"]["pending"] == 1 and got["st"]["enrolled"]


def test_a_batch_id_taken_by_another_device_is_sent_again_under_a_new_one(page, site):
    enrolled(page, site)
    batches = []

    def taken_once(route):
        batches.append(json.loads(gzip.decompress(route.request.post_data_buffer))["batch_id"])
        if len(batches) == 1:
            route.fulfill(status=409, content_type="application/json",
                          body='{"error": {"code": "id_conflict", "message": "Fictional.", "details": {}}}')
        else:
            route.continue_()

    page.route("**/api/v1/sync/push", taken_once)
    got = run(page, """const id = await e.record('child', {given_name: 'Fictional', family_name: 'Taken', sex: 'male',
        district: 'Lamwo', identified_on: new Date().toISOString().slice(0, 10)}); return {id, r: await e.sync()};""")
    assert len(batches) == 2 and batches[0] != batches[1] and got["r"]["applied"] == 1
    assert mutations_of(site, [got["id"]]) == [(got["id"], "applied")]


def test_a_rejected_profile_is_erased_after_the_set_time_and_can_be_resubmitted(page, site):
    enrolled(page, site)
    got = run(page, """const id = await e.record('child', {given_name: 'Fictional', family_name: 'Rejected', sex: 'female',
        district: 'Nowhere', identified_on: new Date().toISOString().slice(0, 10), armed_group: 'Fictional cell'});
        const first = await e.sync(); const kept = await e.get('child', id);
        e.configure({keepRejectedRestrictedDays: 0}); await e.sync(); const erased = await e.get('child', id);
        const m = erased._messages[0];
        const again = await e.resubmit(m.mutation_id, {district: 'Gulu'}); const r = await e.sync();
        return {id, first, kept, erased, m, again, r, after: await e.get('child', id), s: await e.syncStatus()};""")
    assert got["first"]["rejected"] == 1 and got["kept"]["armed_group"] == "Fictional cell"
    assert got["m"]["code"] == "validation_error" and "district" in got["m"]["errors"]
    assert got["m"]["restricted_erased_at"] and "armed_group" not in got["m"]["fields"]
    assert "armed_group" not in got["erased"]
    assert got["again"] != got["m"]["mutation_id"] and got["r"]["applied"] == 1
    assert got["after"]["district"] == "Gulu" and got["after"]["version"] == 1 and got["s"]["failed"] == 0
