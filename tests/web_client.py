"""Helpers for the web page tests: sign in through the real form and post forms with the session's
CSRF token, as a browser would."""

import re

from tests.factories import PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(client) -> str:
    with client.session_transaction() as session:
        token = session.get("csrf")
    if token:
        return token
    page = client.get("/login")
    return TOKEN.search(page.get_data(as_text=True)).group(1)


def sign_in(client, username, password=PASSWORD):
    page = client.get("/login")
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def post(client, url, data=None, **kw):
    """POST a form with the session's CSRF token."""
    return client.post(url, data={**(data or {}), "csrf_token": form_token(client)}, **kw)


def text(response) -> str:
    return response.get_data(as_text=True)
