"""The manager web (DESIGN §6): server-rendered pages under one blueprint, ``bp``.

Views are thin: they parse a form, call the same domain functions as the JSON API, commit once and
render. Each page module registers its routes on ``bp`` when imported below.
"""

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")


def register_web(app) -> None:
    # The pages modules attach their routes to ``bp``; import them before registering it.
    from server.web import (  # noqa: F401
        account_pages,
        agency_pages,
        alert_pages,
        approval_pages,
        audit_pages,
        child_list_pages,
        child_pages,
        conflict_pages,
        dashboard,
        device_pages,
        followup_pages,
        forms,
        grant_pages,
        odk_device_pages,
        referral_pages,
        rendering,
        session,
        tracing_pages,
        transfer_pages,
        user_pages,
    )
    from server.web.errors import html_error

    _import_optional_pages()
    app.config.setdefault("WEB_SESSION_IDLE_MINUTES", 8 * 60)
    app.config.setdefault("WEB_DEVICE_STALE_DAYS", 7)
    app.config["HTML_ERRORS"] = html_error
    session.register(app)
    rendering.register_filters(app)
    app.register_blueprint(bp)


def _import_optional_pages() -> None:
    """Pages other engineers add to ``bp`` (reports) register themselves when their module exists."""
    import importlib.util

    if importlib.util.find_spec("server.web.report_pages"):
        importlib.import_module("server.web.report_pages")
