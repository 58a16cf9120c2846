"""The form macros (server/web/templates/macros.html) render extra attributes as attributes, with
every name and value still escaped (issue 8, finding 11: ``autocomplete=&#34;off&#34;`` was sent)."""

import re
from pathlib import Path

from tests.web_client import text

TEMPLATES = Path(__file__).resolve().parent.parent / "server" / "web" / "templates"


def render_input(app, **kw):
    with app.test_request_context():
        macro = app.jinja_env.get_template("macros.html").module.input
        return str(macro("q", "Case code", **kw))


def test_the_sign_in_page_sends_real_autocomplete_attributes(client):
    page = text(client.get("/login"))
    assert "&#34;" not in page
    assert re.search(r'<input id="username" name="username" type="text" value="" required autocomplete="username" '
                     r'autofocus="autofocus">', page), page
    assert 'autocomplete="current-password"' in page


def test_attribute_values_are_escaped_and_cannot_add_attributes(app):
    html = render_input(app, value='"><script>x()</script>', attrs={"autocomplete": 'off" onfocus="x()', "data-n": 1})
    assert 'autocomplete="off&#34; onfocus=&#34;x()"' in html
    assert ' onfocus="' not in html and "<script>" not in html
    assert 'data-n="1"' in html
    assert render_input(app).count("=") == render_input(app, attrs={}).count("=")


def test_no_template_passes_attributes_as_a_string():
    # A string would be escaped into a broken attribute, and marking it safe would open an XSS hole.
    offenders = [f"{path.name}: {line.strip()}" for path in TEMPLATES.glob("*.html")
                 for line in path.read_text().splitlines() if re.search(r"attrs=['\"]", line)]
    assert offenders == []
