"""Languages of the manager web: the locale chosen per request (the user's choice, else the browser's,
else English), the catalogue complete and compiling, the time zone shown with every time, and the
language picked on /account."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from models import User, db
from server.i18n import TRANSLATIONS, available_languages
from server.web.rendering import show_date
from tests.factories import make_user
from tests.web_client import post, sign_in, text

CATALOGUES = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


@pytest.fixture
def manager(app):
    with app.app_context():
        make_user("manager", username="i18n.manager")
        db.session.commit()


def _key(value):
    """A plural entry's forms: a list from the .mo, a tuple from the .po."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def test_french_is_a_catalogue_and_compiled():
    codes = [p.parent.parent.name for p in CATALOGUES]
    assert "fr" in codes
    assert available_languages() == ["en", *codes], "run `make catalogues` to compile server/translations"


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_every_catalogue_is_complete_and_its_compiled_copy_is_current(po):
    catalog = _read(po)
    untranslated = [m.id for m in catalog if m.id and not (m.string if isinstance(m.string, str) else all(m.string))]
    assert untranslated == [], f"{po}: untranslated"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == [], f"{po}: fuzzy (check, then remove the flag)"
    with po.with_suffix(".mo").open("rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert compiled == {_key(m.id): _key(m.string) for m in catalog if m.id}, "stale .mo: run `make catalogues`"
    assert [(m.id, errors) for m, errors in catalog.check()] == [], "placeholders differ"


def test_browser_language_then_english(client, manager):
    assert 'lang="en"' in text(client.get("/login"))
    page = text(client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}))
    assert 'lang="fr" dir="ltr"' in page and "Aller au contenu" in page
    assert 'lang="en"' in text(client.get("/login", headers={"Accept-Language": "de, sw"}))


def test_a_user_picks_a_language_that_beats_the_browser(client, app, manager):
    sign_in(client, "i18n.manager")
    response = post(client, "/account/language", {"language": "fr"})
    assert response.status_code == 302
    page = text(client.get("/account", headers={"Accept-Language": "en"}))
    assert 'lang="fr"' in page and "Votre compte" in page and "Tableau de bord" in page
    assert "Le site s’affiche maintenant dans cette langue." in page
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "i18n.manager")).scalar_one()
        assert user.language == "fr"
    refused = post(client, "/account/language", {"language": "xx"})
    assert refused.status_code == 422 and "Choisissez une des langues de la liste." in text(refused)
    post(client, "/account/language", {"language": "en"})
    assert 'lang="en"' in text(client.get("/account", headers={"Accept-Language": "fr"}))


def test_times_are_shown_in_the_programme_zone_saying_which(app):
    moment = datetime(2026, 12, 3, 11, 5, tzinfo=UTC)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert show_date(moment) == "3 Dec 2026, 14:05 EAT"
        assert show_date(moment.replace(tzinfo=None)) == "3 Dec 2026, 14:05 EAT"  # naive means UTC
    app.config["TIME_ZONE"] = "Africa/Juba"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert show_date(moment) == "3 déc. 2026, 13:05 CAT"


def test_an_unknown_time_zone_is_refused_at_start(monkeypatch):
    from config import TestingConfig

    monkeypatch.setenv("HOMECOMING_TIME_ZONE", "Africa/Atlantis")
    with pytest.raises(ValueError, match="HOMECOMING_TIME_ZONE"):
        TestingConfig().validate()


def test_pages_words_and_numbers_in_french(client, app, manager):
    sign_in(client, "i18n.manager")
    post(client, "/account/language", {"language": "fr"})
    page = text(client.get("/"))
    assert "Tableau de bord" in page and "Enfants par phase et étape" in page and "0 enfant" in page
    page = text(client.get("/alerts"))
    assert "Aucune alerte ici." in page and "ouvertes ou prises en compte" in page
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        from server.web.rendering import show_number

        assert show_number(100000) == "100\u202f000"


def test_an_e_mail_digest_in_the_recipients_language(app):
    from server.notify.channels import Digest, DigestLine

    line = DigestLine(alert_id="a", case_code="K5E5-W92E", rule="visit_overdue", severity="warning",
                      due_on="2026-12-01", link="http://homecoming.test/children/x")
    digest = Digest(digest_id="d", recipient="boss", email="boss@example.org", lines=[line, line],
                    sent_at="2026-12-03T11:05:00+00:00", language="fr")
    with app.app_context():
        assert digest.subject == "Homecoming : 2 alertes"
        body = digest.text()
        assert "[ATTENTION] dossier K5E5-W92E : visite en retard (échéance 1 déc. 2026)" in body
        assert "Connectez-vous pour voir le dossier." in body
        english = Digest(**{**digest.__dict__, "language": None})
        assert english.subject == "Homecoming: 2 alerts" and "case K5E5-W92E: visit overdue" in english.text()


def test_a_right_to_left_language_sets_the_page_direction(app):
    from flask_babel import force_locale

    from server.i18n import text_direction

    with app.test_request_context():
        assert text_direction() == "ltr"
        with force_locale("ar"):  # Arabic, once its catalogue exists: <html dir="rtl">, no code
            assert text_direction() == "rtl"


def test_the_tracing_referral_and_odk_pages_speak_french(client, manager):
    sign_in(client, "i18n.manager")
    french = {"Accept-Language": "fr"}
    assert "Demandes de recherche" in text(client.get("/tracing", headers=french))
    assert "Nouvelle demande de recherche" in text(client.get("/tracing/new", headers=french))
    assert "Correspondances à examiner" in text(client.get("/matches", headers=french))
    assert "Ajouter une organisation" in text(client.get("/agencies", headers=french))
    assert "Orientations ouvertes" in text(client.get("/referrals", headers=french))
    assert "Nouvel appareil ODK Collect ou KoboCollect" in text(client.get("/devices/odk/new", headers=french))
