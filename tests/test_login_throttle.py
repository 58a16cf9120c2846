"""Finding 5: failures slow down the client that makes them (a growing wait per client address and
typed username), never lock the account, never shut out a browser the user signed in from before, and
read the same for a username that does not exist."""

from datetime import timedelta

import pytest

from models import db, utcnow
from models.accounts import LoginRefused, authenticate
from models.login_throttle import FREE_FAILURES, LoginThrottle, delay_after
from tests.factories import PASSWORD, make_user
from tests.web_client import sign_in, text


@pytest.fixture
def manager(app):
    with app.app_context():
        make_user("manager", username="throttle.mgr")
        db.session.commit()


def _fail(client, username, times, address="10.0.0.9"):
    for _ in range(times):
        page = client.get("/login", environ_base={"REMOTE_ADDR": address})
        token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post("/login", data={"username": username, "password": "wrong guess",
                                                "csrf_token": token}, environ_base={"REMOTE_ADDR": address})
    return response


def test_the_wait_grows_and_is_bounded():
    waits = [delay_after(n, FREE_FAILURES) for n in range(FREE_FAILURES + 12)]
    assert waits[:FREE_FAILURES] == [timedelta(0)] * FREE_FAILURES
    assert waits[FREE_FAILURES] == timedelta(seconds=2) and waits[FREE_FAILURES + 1] == timedelta(seconds=4)
    assert max(waits) == timedelta(minutes=15)


def test_guesses_from_elsewhere_never_shut_out_a_browser_that_signed_in_before(app, manager):
    own = app.test_client()
    assert sign_in(own, "throttle.mgr").status_code == 302  # sets the known-client cookie
    attacker = app.test_client()
    refused = _fail(attacker, "throttle.mgr", 8, address="127.0.0.1")  # the same office address
    assert refused.status_code == 401 and "Too many attempts" in text(refused)
    # The right password from the attacker's client must still wait: no oracle while throttled.
    assert "Too many attempts" in text(sign_in(attacker, "throttle.mgr"))
    # The real user's browser, even from the same address, signs in at once.
    fresh = app.test_client()
    fresh.set_cookie("hc_known", own.get_cookie("hc_known").value)
    assert sign_in(fresh, "throttle.mgr").status_code == 302


def test_a_forged_known_client_cookie_gives_no_own_counter(app, manager):
    attacker = app.test_client()
    _fail(attacker, "throttle.mgr", 8, address="127.0.0.1")
    attacker.set_cookie("hc_known", "eyJjIjoieCIsInUiOltdfQ.forged")
    assert "Too many attempts" in text(sign_in(attacker, "throttle.mgr"))


def test_the_account_is_never_locked_for_the_right_password_after_the_wait(ctx):
    make_user("manager", username="throttle.ctx")
    now = utcnow()
    for _ in range(FREE_FAILURES + 2):
        with pytest.raises(LoginRefused):
            authenticate("throttle.ctx", "wrong", now, address="10.1.1.1")
    with pytest.raises(LoginRefused, match="Too many attempts"):
        authenticate("throttle.ctx", PASSWORD, now, address="10.1.1.1")
    # Another address is not slowed by this one's failures, and after the wait the right password works.
    assert authenticate("throttle.ctx", PASSWORD, now, address="10.2.2.2").username == "throttle.ctx"
    assert authenticate("throttle.ctx", PASSWORD, now + timedelta(minutes=16), address="10.1.1.1")


def test_unknown_usernames_read_exactly_like_wrong_passwords(app, manager):
    for username in ("throttle.mgr", "nobody.here"):
        client = app.test_client()
        first = sign_in(client, username, "wrong guess")
        assert first.status_code == 401 and "Wrong username or password." in text(first)
        last = _fail(client, username, 6, address="10.0.0.7")
        assert "Too many attempts. Wait" in text(last)
    with app.app_context():
        keys = db.session.execute(db.select(LoginThrottle.key)).scalars().all()
        assert keys and not any("nobody" in key or "throttle" in key for key in keys)  # digests only


def test_api_token_is_throttled_per_address_too(app, manager):
    client = app.test_client()
    for _ in range(6):
        client.post("/api/v1/auth/token", json={"username": "throttle.mgr", "password": "wrong guess"},
                    environ_base={"REMOTE_ADDR": "10.3.3.3"})
    slowed = client.post("/api/v1/auth/token", json={"username": "throttle.mgr", "password": PASSWORD},
                         environ_base={"REMOTE_ADDR": "10.3.3.3"})
    assert slowed.status_code == 401 and "Too many attempts" in slowed.get_json()["error"]["message"]
    other = client.post("/api/v1/auth/token", json={"username": "throttle.mgr", "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "10.4.4.4"})
    assert other.status_code == 200
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody.here", "password": "wrong guess"})
    known = client.post("/api/v1/auth/token", json={"username": "throttle.mgr", "password": "wrong guess"})
    assert unknown.get_json()["error"]["message"] == known.get_json()["error"]["message"]
