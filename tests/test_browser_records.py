"""Registering a child on the manager web in headless Chromium, then its printable case summary.

One live site and one browser for the module (tests/browser/live_site.py); every name is fictional.
"""

import os

import playwright.sync_api as playwright_api
import pytest

from tests.browser.live_site import CHROMIUM, CHROMIUM_ARGS, screenshot, sign_in, start_site
from tests.conftest import need

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need(os.path.exists(CHROMIUM), "apt-get install chromium")
    site = start_site(tmp_path_factory.mktemp("browser-records"))
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def page(site):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        assert dialogs == [], f"a page opened a dialog: {dialogs}"


def test_a_caseworker_registers_a_child_and_prints_the_summary(site, page):
    expect = playwright_api.expect
    sign_in(page, site, site.users["cw1"])
    page.goto(site.url + "/children")
    page.get_by_role("link", name="Register a child").click()
    expect(page.get_by_role("heading", name="Register a child")).to_be_visible()
    page.get_by_label("Given name").fill("Aber")
    page.get_by_label("Family name").fill("Fictional-Browser")
    page.get_by_label("Sex", exact=True).select_option("female")
    page.get_by_label("Year of birth").fill("2099")
    page.get_by_label("District", exact=True).select_option("Kitgum")
    page.get_by_label("Village").fill("Fictional village")
    page.get_by_label("Consent for services").select_option("caregiver")
    page.get_by_role("button", name="Register the child").click()
    # Refused by the shared schema, the form comes back with what was typed and says why.
    expect(page.get_by_text("Cannot be in the future.")).to_be_visible()
    expect(page.get_by_label("Village")).to_have_value("Fictional village")
    expect(page.get_by_label("Consent for services")).to_have_value("caregiver")
    screenshot(page, "register-refused")
    page.get_by_label("Year of birth").fill("2012")
    page.get_by_role("button", name="Register the child").click()
    expect(page.get_by_role("heading", name="Aber Fictional-Browser")).to_be_visible()
    screenshot(page, "registered-child")

    page.get_by_role("link", name="Case summary for printing").click()
    expect(page.get_by_text("services: caregiver")).to_be_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator(".no-print").is_visible()
    expect(page.get_by_role("heading", name="Aber Fictional-Browser")).to_be_visible()
    screenshot(page, "case-summary-print")
    page.emulate_media(media="screen")
