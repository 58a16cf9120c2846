"""The field app's UI (issue 9): the catalogue, the escaping rule, and the caseworker's journeys in
real Chromium against a real server process (tests/browser/field_site.py).

Every name here is fictional.
"""

import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "server" / "field" / "static"
UI_SCRIPTS = [STATIC / "js" / "app.js", STATIC / "js" / "i18n.js", *sorted((STATIC / "js" / "ui").glob("*.js"))]
# The vocabulary lists the server serves, and the catalogue list each one is labelled from.
TERM_LISTS = {"sexes": "sex", "risk_levels": "risk", "not_seen_reasons": "not_seen_reason", "wellbeing": "wellbeing",
              "concerns": "concern", "followup_kinds": "followup_kind", "followup_statuses": "followup_status",
              "assessment_kinds": "assessment_kind", "service_types": "service_type",
              "service_statuses": "service_status", "consent_purposes": "consent_purpose",
              "consent_givers": "consent_giver", "how_left": "how_left", "stages": "stage"}


def catalogue(code: str) -> dict:
    return json.loads((STATIC / "i18n" / f"{code}.json").read_text(encoding="utf-8"))


def test_every_language_has_every_string_with_the_same_placeholders():
    english = catalogue("en")
    languages = json.loads((STATIC / "i18n" / "languages.json").read_text(encoding="utf-8"))
    assert "en" in languages and "fr" in languages
    for code in languages:
        other = catalogue(code)
        assert set(other) == set(english), code
        for key, text in english.items():
            assert set(re.findall(r"\{\w+\}", other[key])) == set(re.findall(r"\{\w+\}", text)), (code, key)


def test_every_string_the_code_asks_for_is_in_the_catalogue():
    english = catalogue("en")
    source = "\n".join(p.read_text(encoding="utf-8") for p in UI_SCRIPTS)
    keys = set(re.findall(r"\bt\(\s*'([a-z_.]+)'", source))
    keys |= {k for pair in re.findall(r"\bt\(\w+ \? '([a-z_.]+)' : '([a-z_.]+)'\)", source) for k in pair}
    assert len(keys) > 100
    missing = [k for k in keys if k not in english and f"{k}.other" not in english]
    assert not missing


def test_every_vocabulary_value_has_words_in_the_catalogue():
    from server.field_app import vocabulary

    english = catalogue("en")
    served = vocabulary()
    missing = [f"vocab.{term}.{value}" for name, term in TERM_LISTS.items() for value in served[name]
               if f"vocab.{term}.{value}" not in english]
    assert not missing


def test_every_alert_rule_and_rejection_code_has_words():
    # The rules as docs/operations.md tables them, the codes as docs/sync-protocol.md does.
    docs = Path(__file__).resolve().parent.parent / "docs"
    english = catalogue("en")
    table = (docs / "operations.md").read_text(encoding="utf-8").split("| rule | severity")[1].split("\n\n")[0]
    rules = {name for cell in re.findall(r"^\| ([^|]+) \|", table, re.M) for name in re.findall(r"`([a-z_]+)`", cell)}
    assert {"visit_overdue", "missed_in_row", "consent_adult", "danger_reported"} <= rules
    assert not [rule for rule in rules if f"vocab.rule.{rule}" not in english]
    protocol = (docs / "sync-protocol.md").read_text(encoding="utf-8")
    codes = set(re.findall(r"^\| `([a-z_]+)` \| ", protocol.split("Rejection codes")[1].split("A corrected")[0], re.M))
    assert "invalid_transition" in codes
    assert not [c for c in codes if f"message.rejected.{c}" not in english or f"message.todo.{c}" not in english]


def test_the_ui_never_parses_data_as_html():
    # Values reach the page through textContent and DOM APIs only (ui/dom.js); a name such as
    # "<script>" must be shown, never run.
    for path in UI_SCRIPTS:
        source = path.read_text(encoding="utf-8")
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in source, (path.name, banned)


def test_the_shell_has_no_inline_script_or_style():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="js/app.js">']
    assert "style=" not in html and "<style" not in html and " on" not in re.sub(r"<meta[^>]*>", "", html).lower()
