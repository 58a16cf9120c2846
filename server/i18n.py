"""Languages of the manager web and its e-mails (Flask-Babel).

A language is a catalogue folder under ``server/translations/`` (``fr/LC_MESSAGES/messages.po``);
English is the source text and needs none. Adding Acholi, Arabic or Swahili is a new catalogue, no code
(docs/web.md, "Languages"). The language of a request: the signed-in user's choice (``User.language``),
else the best of the browser's Accept-Language among the catalogues, else English. Times are shown in
the programme's zone (``HOMECOMING_TIME_ZONE``), whatever the language.
"""

from pathlib import Path

from babel import Locale, UnknownLocaleError
from flask import g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
SOURCE_LANGUAGE = "en"

babel = Babel()


def available_languages() -> list[str]:
    """English first, then every catalogue that has been compiled (a .mo beside its .po)."""
    found = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.mo"))
    return [SOURCE_LANGUAGE, *(code for code in found if code != SOURCE_LANGUAGE)]


def language_choices() -> list[tuple[str, str]]:
    """(code, the language's own name) for the language picker: "Français", not "French"."""
    return [(code, Locale.parse(code).get_display_name(code).capitalize()) for code in available_languages()]


def select_locale() -> str:
    languages = available_languages()
    user = g.get("user") if has_request_context() else None
    if user is not None and user.language in languages:
        return user.language
    if has_request_context():
        return request.accept_languages.best_match(languages) or SOURCE_LANGUAGE
    return SOURCE_LANGUAGE


def text_direction() -> str:
    """"rtl" for Arabic and the other right-to-left scripts, for ``<html dir>``."""
    try:
        return get_locale().text_direction
    except (AttributeError, UnknownLocaleError):
        return "ltr"


def in_language(code: str | None):
    """Render something (an e-mail) in a recipient's language rather than the request's."""
    return force_locale(code if code in available_languages() else SOURCE_LANGUAGE)


def init_app(app) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", SOURCE_LANGUAGE)
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config.get("TIME_ZONE", "Africa/Kampala")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["text_direction"] = text_direction
    app.jinja_env.globals["get_locale"] = get_locale
