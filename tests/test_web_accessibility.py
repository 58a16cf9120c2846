"""Accessibility basics on every page: each visible form control has a label, ids are unique, the page
has one h1, a language, a main landmark and a skip link; images (SVG charts) have a name."""

from html.parser import HTMLParser

import pytest

from tests.test_web_pages import as_role, world  # noqa: F401  (the fixture)
from tests.web_client import post, text


class Audit(HTMLParser):
    def __init__(self):
        super().__init__()
        self.controls, self.labels, self.ids, self.h1, self.svgs = [], set(), [], 0, []
        self.lang = self.main = self.skip = False
        self.label_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.lang = bool(a.get("lang"))
        if tag == "main":
            self.main = True
        if tag == "a" and a.get("href") == "#main":
            self.skip = True
        if tag == "h1":
            self.h1 += 1
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.labels.add(a["for"])
        if tag == "svg":
            self.svgs.append(a)
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append((tag, a, self.label_depth > 0))

    def handle_endtag(self, tag):
        if tag == "label":
            self.label_depth -= 1


def check(html: str, where: str) -> None:
    page = Audit()
    page.feed(html)
    assert page.lang and page.main and page.skip, where
    assert page.h1 == 1, where
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    assert not duplicates, (where, duplicates)
    for tag, attrs, wrapped in page.controls:
        named = wrapped or attrs.get("aria-label") or attrs.get("id") in page.labels
        assert named, (where, tag, attrs)
    for svg in page.svgs:
        assert svg.get("role") == "img" and svg.get("aria-label") or svg.get("aria-labelledby"), (where, svg)


@pytest.mark.parametrize("role,paths", [
    ("manager", ["/", "/children", "/children/{mine}", "/followups", "/alerts", "/conflicts",
                 "/conflicts/{conflict}", "/approvals", "/devices"]),
    ("cw", ["/", "/children", "/children/{mine}", "/followups", "/alerts"]),
    ("admin", ["/users", "/audit", "/devices"]),
])
def test_every_control_is_labelled(app, world, role, paths):  # noqa: F811
    client = as_role(app, role)
    for path in paths:
        url = path.format(**world)
        response = client.get(url)
        assert response.status_code == 200, url
        check(text(response), url)
    if role == "manager":
        check(text(post(client, f"/children/{world['mine']}/restricted")), "restricted")
        check(text(post(client, "/devices", {"caseworker": "w.cw", "label": "Phone 8"}, follow_redirects=True)),
              "enrolled")


def test_login_and_error_pages_are_accessible(client):
    check(text(client.get("/login")), "/login")
    check(text(client.get("/no-such-page")), "404")
