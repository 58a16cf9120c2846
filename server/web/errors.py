"""Error pages for the web in plain words. ``server.errors`` calls ``html_error`` for every error on a
path outside the JSON API (``app.config["HTML_ERRORS"]``); the API keeps its JSON shape."""

from flask import render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError

from models.errors import Problem

TITLES = {
    400: (_l("This request could not be used"), _l("Something in the request was not right.")),
    403: (_l("You may not open this page"), _l("Your role does not allow this. If you need it, ask a manager or "
                                               "your administrator.")),
    404: (_l("Not found"), _l("There is nothing at this address, or you may not see it. Check the link or go "
                              "back to the dashboard.")),
    405: (_l("Not allowed here"), _l("This address does not take that kind of request.")),
    413: (_l("Too large"), _l("What you sent is larger than the server accepts.")),
    429: (_l("Too many attempts"), _l("Wait a few minutes and try again.")),
    500: (_l("Something went wrong"), _l("The server could not finish this. It was logged; try again, and tell "
                                        "your administrator if it keeps happening.")),
    503: (_l("Temporarily unavailable"), _l("The database cannot be reached. Try again in a minute.")),
}


def html_error(exc: Exception):
    if isinstance(exc, Problem):
        # A rule the page did not catch itself: say it, with the domain's own (case-code only) message.
        from server.errors import status_of

        status = status_of(exc)
        return render_template("error.html", status=status, title=gettext("This could not be done"), text=exc.message,
                               user=_user()), status
    if not isinstance(exc, HTTPException):
        exc = InternalServerError()
    status = exc.code or 500
    if status >= 500:
        from models import db

        db.session.rollback()  # leave nothing half-written behind the error page
    title, default_text = TITLES.get(status, (gettext("Something went wrong"),
                                              gettext("The request could not be completed.")))
    # Werkzeug's stock descriptions are technical; use ours unless a view gave its own.
    stock = type(exc).description
    text = exc.description if exc.description and exc.description != stock else default_text
    return render_template("error.html", status=status, title=title, text=text, user=_user()), status


def _user():
    from server.web.session import current_user

    try:
        return current_user()
    except Exception:  # the database itself may be what failed
        return None
