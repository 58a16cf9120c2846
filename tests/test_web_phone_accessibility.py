"""Every page of the manager web at a laptop's 1366 px and a phone's 390 px, in Chromium: axe-core finds
no serious or critical violation, the page never scrolls sideways, and every button, link and field is
within the screen (a wide table scrolls in its own focusable box, or turns into cards). Each page is
screenshot at both widths into this module's tmp folder (``screens/``).

To add a page: one line in ``PAGES``: who opens it, and its path (``{mover}`` and the like name the
site's children, see tests/browser/live_site.py), or ``(path, selector)`` to follow the first link
matching ``selector`` on that page.
"""

import os
import re

import playwright.sync_api as playwright_api
import pytest

from tests.browser.live_site import CHROMIUM, CHROMIUM_ARGS, sign_in, start_site
from tests.conftest import need
from tests.test_field_app import AXE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (1366, 390)
PAGES = (
    ("manager", "/"),
    ("manager", "/children"),
    ("manager", "/children/{mover}"),
    ("manager", "/children/new"),
    ("manager", "/children/{closing}/summary"),
    ("manager", "/followups"),
    ("manager", ("/followups", "a[href$='/visit']")),
    ("manager", "/alerts"),
    ("manager", "/conflicts"),
    ("manager", ("/conflicts", "main a[href^='/conflicts/']")),
    ("manager", "/approvals"),
    ("manager", "/grants"),
    ("manager", "/devices"),
    ("manager", "/reports"),
    ("manager", "/audit"),
    ("manager", "/account"),
    ("manager", "/tracing"),
    ("manager", "/tracing/new"),
    ("manager", "/matches"),
    ("manager", "/referrals"),
    ("manager", "/agencies"),
    ("manager", "/devices/odk/new"),
    ("cw1", "/"),
    ("cw1", "/alerts"),
    ("admin", "/users"),
    ("admin", "/audit"),
    ("admin", "/devices"),
    ("analyst", "/reports"),
    (None, "/login"),
    (None, "/no-such-page"),
)

# What sticks out of the screen: visible controls whose right edge passes the viewport, unless they
# sit in a box that scrolls by itself.
OUTSIDE = """(width) => [...document.querySelectorAll('main a, main button, main input, main select, main textarea, header a, header button')]
  .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
  .filter((el) => !el.closest('.table-scroll'))
  .filter((el) => el.getBoundingClientRect().right > width + 1)
  .map((el) => (el.tagName + ' ' + (el.textContent || el.name || el.id || '').trim().slice(0, 40)))"""

AXE_RUN = ("async () => (await axe.run(document)).violations.filter(v => ['serious', 'critical'].includes(v.impact))"
           ".map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need(os.path.exists(CHROMIUM), "apt-get install chromium")
    site = start_site(tmp_path_factory.mktemp("phone"))
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def browser(site):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _open(page, site, target) -> str:
    path, follow = (target, None) if isinstance(target, str) else target
    page.goto(site.url + path.format(**site.children))
    if follow:
        link = page.locator(follow).first
        assert link.count(), f"no link {follow} on {path}"
        page.goto(site.url + link.get_attribute("href"))
    return page.url.removeprefix(site.url)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_is_accessible_and_fits(site, browser, tmp_path_factory, width):
    screens = tmp_path_factory.mktemp(f"screens-{width}")
    problems = []
    contexts = {}
    try:
        for who, target in PAGES:
            if who not in contexts:
                # axe goes in as a script tag, which the site's CSP (script-src 'self') rightly refuses:
                # only this test's browser bypasses it.
                context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
                page = context.new_page()
                page.set_default_timeout(15_000)
                dialogs = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
                if who:
                    sign_in(page, site, site.users[who])
                contexts[who] = (context, page, dialogs)
            _, page, dialogs = contexts[who]
            where = f"{who or 'anonymous'} {_open(page, site, target)} at {width}px"
            page.screenshot(path=str(screens / (re.sub(r"\W+", "_", where) + ".png")), full_page=True)
            sideways = page.evaluate("() => document.documentElement.scrollWidth")
            if sideways > width + 1:
                problems.append(f"{where}: the page scrolls sideways ({sideways} px wide)")
            if outside := page.evaluate(OUTSIDE, width):
                problems.append(f"{where}: off the screen: {outside[:5]}")
            page.add_script_tag(path=str(AXE))
            if violations := page.evaluate(AXE_RUN):
                problems.append(f"{where}: axe: {violations}")
            if dialogs:
                problems.append(f"{where}: a dialog opened: {dialogs}")
    finally:
        for context, _, _ in contexts.values():
            context.close()
    assert problems == [], "\n".join(problems)
