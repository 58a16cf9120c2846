"""Signing in and out of the web: session cookie flags, CSRF on every form, idle expiry, revocation
by password reset or disabling, the throttle and the disabled-account message."""

import time

import pytest

from models import User, db
from tests.factories import make_user
from tests.web_client import TOKEN, post, sign_in, text


@pytest.fixture
def users(app):
    with app.app_context():
        for role in ("admin", "manager", "caseworker", "analyst"):
            make_user(role, username=f"web.{role}")
        db.session.commit()


def test_login_sets_a_safe_cookie_and_lands_each_role_where_its_work_is(client, users):
    response = sign_in(client, "web.manager")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    for role, home in (("admin", "/users"), ("analyst", "/reports")):
        other = client.application.test_client()
        sign_in(other, f"web.{role}")
        assert other.get("/").headers["Location"] == home


def test_secure_cookie_over_https(app, users):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = sign_in(app.test_client(), "web.manager")
    assert "Secure" in response.headers["Set-Cookie"]


def test_pages_need_a_session(client):
    for path in ("/", "/children", "/followups", "/alerts", "/conflicts", "/approvals", "/devices", "/users",
                 "/audit"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path


def test_wrong_password_and_disabled_account_say_so(client, app, users):
    response = sign_in(client, "web.manager", "wrong password")
    assert response.status_code == 401 and "Wrong username or password." in text(response)
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "web.caseworker")).scalar_one()
        user.active = False
        db.session.commit()
    response = sign_in(client, "web.caseworker")
    assert response.status_code == 401 and "This account is disabled" in text(response)


def test_login_is_throttled_not_locked(client, users):
    for _ in range(6):
        sign_in(client, "web.manager", "wrong password")
    response = sign_in(client, "web.manager")  # the right password, but this client must wait
    assert response.status_code == 401 and "Too many attempts. Wait" in text(response)


def test_forged_or_missing_csrf_token_is_refused(client, users):
    sign_in(client, "web.manager")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/logout").status_code == 400
    # The login form itself carries a token: a cross-site login attempt without it is refused.
    other = client.application.test_client()
    assert other.post("/login", data={"username": "web.manager", "password": "x"}).status_code == 400
    assert client.get("/").status_code == 200  # still signed in after the refused posts


def test_csrf_error_is_a_page_in_plain_words(client, users):
    sign_in(client, "web.manager")
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.mimetype == "text/html" and "did not come from this site" in text(response)


def test_logout_ends_the_session_and_any_copy_of_its_cookie(client, users):
    sign_in(client, "web.manager")
    copied = client.get_cookie("session").value  # e.g. taken off a shared office laptop
    response = post(client, "/logout")
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    thief = client.application.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/children").status_code == 302


def test_a_session_in_use_still_ends_after_its_longest_life(client, app, users):
    sign_in(client, "web.manager")
    with client.session_transaction() as session:
        session["started"] = int(time.time()) - app.config["WEB_SESSION_MAX_HOURS"] * 3600 - 5
    assert client.get("/children").status_code == 302


def test_idle_session_expires_with_a_message(client, app, users):
    sign_in(client, "web.manager")
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - app.config["WEB_SESSION_IDLE_MINUTES"] * 60 - 5
    response = client.get("/children")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    page = client.get(response.headers["Location"])
    assert "Your session expired. Sign in again." in text(page)


def test_password_reset_and_disabling_end_sessions(client, app, users):
    sign_in(client, "web.caseworker")
    assert client.get("/children").status_code == 200
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "web.caseworker")).scalar_one()
        user.set_password("a brand new password")
        db.session.commit()
    assert client.get("/children").status_code == 302

    admin = app.test_client()
    sign_in(admin, "web.admin")
    sign_in(client, "web.manager")
    with app.app_context():
        manager_id = db.session.execute(db.select(User.id).where(User.username == "web.manager")).scalar_one()
    assert post(admin, f"/users/{manager_id}/disable", {"confirmed": "yes"}).status_code == 302
    assert client.get("/children").status_code == 302


def test_next_only_goes_to_this_site(client, users):
    page = client.get("/login?next=https://evil.example/")
    token = TOKEN.search(text(page)).group(1)
    response = client.post("/login?next=https://evil.example/",
                           data={"username": "web.manager", "password": "correct horse battery", "csrf_token": token})
    assert response.headers["Location"] == "/"
    other = client.application.test_client()
    redirected = other.get("/children?stage=assessed")
    assert "next=" in redirected.headers["Location"]
    page = other.get(redirected.headers["Location"])
    token = TOKEN.search(text(page)).group(1)
    response = other.post(redirected.headers["Location"],
                          data={"username": "web.manager", "password": "correct horse battery", "csrf_token": token})
    assert response.headers["Location"] == "/children?stage=assessed"


def test_json_api_keeps_json_errors_and_web_gets_html(client, users):
    api = client.get("/api/v1/children/not-a-uuid")
    assert api.mimetype == "application/json" and api.get_json()["error"]["code"] == "not_found"
    sign_in(client, "web.manager")
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html" and "Not found" in text(page)
    assert client.get("/users").status_code == 403
    assert "You may not open this page" in text(client.get("/users"))


def test_an_unexpected_error_on_a_page_is_a_plain_500_page(app, client, users):
    def broken():
        raise RuntimeError("boom")

    app.add_url_rule("/broken-for-test", "broken", broken)
    response = client.get("/broken-for-test")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something went wrong" in text(response) and "boom" not in text(response)


def test_security_headers_on_pages(client, users):
    sign_in(client, "web.manager")
    response = client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_an_uncaught_domain_error_on_a_page_is_a_page_not_json(app, client, users):
    from models.errors import InvalidTransition

    def refuses():
        raise InvalidTransition("A child in stage 'closed' cannot move to 'tracing'.")

    app.add_url_rule("/refuses-for-test", "refuses", refuses)
    response = client.get("/refuses-for-test")
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "cannot move to &#39;tracing&#39;" in text(response)


def test_change_your_own_password(app, client, users):
    from tests.factories import PASSWORD
    from tests.web_client import post

    sign_in(client, "web.caseworker")
    other = app.test_client()
    sign_in(other, "web.caseworker")
    page = client.get("/account")
    assert page.status_code == 200 and "Change your password" in text(page)
    wrong = post(client, "/account", {"current": "nope", "new": "a new long password", "again": "a new long password"})
    assert wrong.status_code == 422 and "not your current password" in text(wrong)
    short = post(client, "/account", {"current": PASSWORD, "new": "short", "again": "short"})
    assert short.status_code == 422 and "at least 10" in text(short)
    changed = post(client, "/account", {"current": PASSWORD, "new": "a new long password",
                                        "again": "a new long password"})
    assert changed.status_code == 302
    assert client.get("/children").status_code == 200  # this session goes on
    assert other.get("/children").status_code == 302  # the other one ended
    assert sign_in(app.test_client(), "web.caseworker", "a new long password").status_code == 302
