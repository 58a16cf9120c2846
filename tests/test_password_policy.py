"""Finding 11 (password policy): beyond length, refuse a password on the shipped common-password list
or one holding the username, with one function that the web and the command line both ask."""

import pytest

from models import db
from models.passwords import common_passwords, password_problems
from tests.factories import PASSWORD, make_user
from tests.web_client import post, sign_in, text


def test_the_list_is_a_real_common_password_list():
    words = common_passwords()
    assert len(words) > 10_000
    assert {"123456", "password", "qwerty", "iloveyou"} <= words


@pytest.mark.parametrize("password", ["password123", "Password1234", "qwertyuiop", "1234567890",
                                      "iloveyou12", "Sunshine2024!"])
def test_common_passwords_are_refused(password):
    assert any("most common" in p for p in password_problems(password, "someone"))


def test_the_username_is_refused_in_any_case():
    assert password_problems("Okello.Mgr-2026-x", "okello.mgr") == ["Do not use your username in your password."]
    assert password_problems("a quiet river at dawn", "okello.mgr") == []
    assert password_problems("short", "x") == ["Use at least 10 characters."]


def test_the_web_refuses_a_common_password_or_the_username(app, client):
    with app.app_context():
        make_user("caseworker", username="policy.cw")
        db.session.commit()
    sign_in(client, "policy.cw")
    for new in ("password123", "policy.cw-is-me"):
        response = post(client, "/account", {"current": PASSWORD, "new": new, "again": new})
        assert response.status_code == 422, new
    assert "most common passwords" in text(post(client, "/account", {"current": PASSWORD, "new": "password123",
                                                                       "again": "password123"}))


def test_the_command_line_refuses_them_too(runner):
    common = runner.invoke(args=["users", "create", "policy.cli", "--role", "analyst", "--password-stdin"],
                           input="password123\n")
    assert common.exit_code != 0 and "most common" in common.output
    own = runner.invoke(args=["users", "create", "policy.cli", "--role", "analyst", "--password-stdin"],
                        input="policy.cli.2026\n")
    assert own.exit_code != 0 and "username" in own.output
