"""Browser tests: Playwright for Python driving Debian's headless Chromium (no browser download)
against a live waitress server in a subprocess, on demo data.

Each step leaves a full-page screenshot in ``artifacts/screenshots/`` (ignored by git) for people to
look at. A dialog opening on any page fails the test: a child named ``<script>alert(1)</script>``
must render as text.
"""

import csv
import io
import os
import re

import playwright.sync_api as playwright_api
import pytest

from tests.browser.live_site import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_NAME,
    screenshot,
    sign_in,
    start_site,
)
from tests.conftest import need

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need(os.path.exists(CHROMIUM), "apt-get install chromium")
    site = start_site(tmp_path_factory.mktemp("browser"))
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def browser(site):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert dialogs == [], f"a page opened a dialog: {dialogs}"


def expect(locator):
    return playwright_api.expect(locator)


@pytest.mark.parametrize("role, path, heading", [
    ("manager", "/followups", "Follow-ups"),
    ("manager", "/alerts", "Alerts"),
    ("manager", "/conflicts", "Sync conflicts"),
    ("manager", "/devices", "Devices"),
    ("admin", "/users", "Users"),
    ("admin", "/audit", "Audit log"),
    ("cw1", "/account", "Your account"),
])
def test_every_other_page_renders_for_its_role(site, page, role, path, heading):
    if role == "manager" and path == "/followups":
        page.goto(site.url + "/login")
        screenshot(page, "login")
    sign_in(page, site, site.users[role])
    page.goto(site.url + path)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    if role == "admin":  # admins see no child: not even a name in the audit log
        assert HOSTILE_NAME not in page.content()
    screenshot(page, path.strip("/"))


def test_manager_signs_in_and_sees_the_dashboard_charts(site, page):
    sign_in(page, site, site.users["manager"])
    assert page.url.rstrip("/") == site.url
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    funnel = page.locator('svg[role="img"]').first
    expect(funnel).to_be_visible()
    assert "phase and stage" in funnel.get_attribute("aria-label")
    assert page.locator('svg[role="img"] rect').count() >= 5
    screenshot(page, "dashboard")


def test_manager_reads_the_reports_and_downloads_the_de_identified_figures(site, page):
    sign_in(page, site, site.users["manager"])
    page.get_by_role("link", name="Reports").click()
    year = site_today().year
    period = page.get_by_role("form", name="Reporting period")
    period.locator("#start").fill(f"{year - 3}-01-01")
    period.locator("#end").fill(site_today().isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table#indicators")).to_be_visible()
    identified = page.locator('table#indicators tr[data-key="identified"] td').first
    assert re.fullmatch(r"\d+|<5", identified.inner_text())
    assert page.locator('svg[role="img"]').count() >= 3
    assert HOSTILE_NAME not in page.content()  # a report never names a child
    screenshot(page, "reports")
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download the figures")).click()
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert rows[0] == ["Period start", "Period end", "Table", "Indicator", "Breakdown", "Value"]
    assert all(not r[5].startswith(("=", "+", "-", "@")) for r in rows[1:])


def test_reports_are_readable_at_768_pixels(site, page):
    page.set_viewport_size({"width": 768, "height": 1000})
    sign_in(page, site, site.users["analyst"])
    page.goto(site.url + f"/reports?start={site_today().year - 3}-01-01&end={site_today().isoformat()}")
    expect(page.locator("table#indicators")).to_be_visible()
    # Wide tables scroll inside their own box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    screenshot(page, "reports-768")


def test_analyst_sees_only_reports(site, page):
    sign_in(page, site, site.users["analyst"])
    assert page.url.endswith("/reports")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Reports")).to_be_visible()
    assert nav.get_by_role("link", name="Children").count() == 0
    expect(page.get_by_role("button", name=re.compile("Download the case list"))).to_have_count(0)
    response = page.goto(site.url + "/children/" + site.children["mover"])
    assert response.status in (403, 404)
    screenshot(page, "analyst-refused-child")


def test_manager_filters_the_children_and_opens_a_child(site, page):
    sign_in(page, site, site.users["manager"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Children").click()
    page.get_by_label("District").select_option("Lamwo")
    page.get_by_role("button", name="Show").click()
    assert "district=Lamwo" in page.url
    districts = page.locator("table.list tbody tr td:nth-child(5)").all_inner_texts()
    assert districts and set(districts) == {"Lamwo"}
    screenshot(page, "children-filtered")
    page.get_by_role("link", name=site.codes["mover"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(site.codes["mover"])
    screenshot(page, "child")


def test_manager_moves_a_child_to_the_next_stage(site, page):
    sign_in(page, site, site.users["manager"])
    page.goto(site.url + "/children/" + site.children["mover"])
    expect(page.locator("p.lead")).to_contain_text("Stage identified")
    page.get_by_text("Move to another stage").click()
    page.get_by_label("New stage").select_option("registered")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("p.lead")).to_contain_text("Stage registered")
    screenshot(page, "child-moved")


def test_a_hostile_name_renders_as_text(site, page):
    sign_in(page, site, site.users["manager"])
    page.goto(site.url + "/children/" + site.children["hostile"])
    expect(page.locator("dd", has_text=HOSTILE_NAME).first).to_be_visible()
    assert "<script>alert(1)</script>" not in page.content()
    page.goto(site.url + "/children?q=" + site.codes["hostile"])
    expect(page.locator("table.list td", has_text=HOSTILE_NAME).first).to_be_visible()
    screenshot(page, "hostile-name-escaped")
    # The page fixture fails the test if any dialog (alert) opened.


def test_caseworker_cannot_see_another_caseworkers_child(site, page):
    sign_in(page, site, site.users["cw1"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Children").click()
    codes = page.locator("table.list tbody tr td:first-child").all_inner_texts()
    assert site.codes["mover"] in codes
    assert site.codes["others"] not in codes
    response = page.goto(site.url + "/children/" + site.children["others"])
    assert response.status == 404
    assert "Elsewhere" not in page.content()
    screenshot(page, "caseworker-refused")
    page.goto(site.url + "/children?q=" + site.codes["others"])
    assert site.codes["others"] not in page.locator("table.list").inner_text()


def test_manager_approves_a_closure(site, page):
    sign_in(page, site, site.users["manager"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    card = page.locator("article.approval", has_text=site.codes["closing"])
    expect(card).to_be_visible()
    screenshot(page, "approvals")
    card.get_by_label("Closure reason").select_option("reintegrated")
    card.get_by_role("button", name="Approve closure").click()
    expect(page.locator("article.approval", has_text=site.codes["closing"])).to_have_count(0)
    page.goto(site.url + "/children/" + site.children["closing"])
    expect(page.locator("p.lead")).to_contain_text("Stage closed")


def test_manager_resolves_a_conflict_made_by_two_devices(site, page, tmp_path):
    from sync.client import SyncClient
    from tests.sync_devices import PASSPHRASE

    phone_a = SyncClient(site.url, site.tokens["a"], str(tmp_path / "a.sqlite"), passphrase=PASSPHRASE)
    phone_b = SyncClient(site.url, site.tokens["b"], str(tmp_path / "b.sqlite"), passphrase=PASSPHRASE)
    child_id = site.children["contested"]
    phone_a.sync()
    phone_b.sync()
    assert phone_a.get("child", child_id) and phone_b.get("child", child_id)
    phone_a.record("child", {"risk_level": "high"}, id=child_id)
    assert phone_a.sync().applied == 1
    phone_b.record("child", {"risk_level": "low"}, id=child_id)  # offline, from the older version
    assert phone_b.sync().conflicts == 1

    sign_in(page, site, site.users["manager"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Conflicts").click()
    page.get_by_role("link", name=f"conflict on {site.codes['contested']}").click()
    expect(page.get_by_role("heading", name=re.compile("Conflict on"))).to_contain_text(site.codes["contested"])
    screenshot(page, "conflict")
    page.get_by_label("Keep low").check()
    page.get_by_role("button", name="Keep the chosen values").click()
    page.goto(site.url + "/children/" + child_id)
    risk = page.locator("xpath=//dt[normalize-space()='Risk level']/following-sibling::dd[1]")
    expect(risk).to_have_text("low")
    # The resolution syncs back to the phone that lost the race.
    phone_a.sync()
    assert phone_a.get("child", child_id)["risk_level"] == "low"
    phone_a.close()
    phone_b.close()


def test_manager_enrols_a_device_whose_token_syncs(site, page, tmp_path):
    from sync.client import SyncClient
    from tests.sync_devices import PASSPHRASE

    sign_in(page, site, site.users["manager"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Devices").click()
    page.get_by_text("Enrol a device").click()
    page.get_by_label("Caseworker").select_option(site.users["cw2"])
    page.get_by_label("Device name").fill("Fictional tablet 9")
    page.get_by_role("button", name="Enrol and show the token").click()
    token = page.locator("#device-token").input_value().strip()
    assert len(token) >= 32
    expect(page.locator("figure.qr svg")).to_be_visible()
    screenshot(page, "device-enrolled")

    phone = SyncClient(site.url, token, str(tmp_path / "tablet.sqlite"), passphrase=PASSPHRASE)
    report = phone.sync()
    assert report.pulled > 0
    assert phone.get("child", site.children["others"])["case_code"] == site.codes["others"]
    assert phone.get("child", site.children["mover"]) is None  # another caseworker's child
    phone.record("child", {"risk_level": "medium"}, id=site.children["others"])
    assert phone.sync().applied == 1
    phone.close()
    page.goto(site.url + "/devices")
    row = page.locator("table.list tr", has_text="Fictional tablet 9")
    expect(row).not_to_contain_text("never")  # last contact recorded


def site_today():
    from tests.browser.live_site import today

    return today()
