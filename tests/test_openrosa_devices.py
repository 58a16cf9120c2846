"""Setting up an ODK Collect phone on the web (issue 11): a manager picks the caseworker, the page shows
ODK Collect's settings QR code and the credentials once, and the phone then signs in with them."""

import base64
import json
import re
import zlib

from models import Device, db
from server.openrosa.collect_settings import collect_settings
from tests.factories import make_user
from tests.odk_phone import OdkPhone
from tests.web_client import post, sign_in, text


def manager_and_caseworker(app):
    with app.app_context():
        make_user("manager", username="boss")
        make_user("caseworker", username="cw.kitgum")
        db.session.commit()


def test_a_manager_sets_up_a_phone_and_it_signs_in_with_what_the_page_showed(app, client):
    manager_and_caseworker(app)
    assert sign_in(client, "boss").status_code == 302
    assert "ODK Collect" in text(client.get("/devices"))
    assert client.get("/devices/odk/new").status_code == 200
    answer = post(client, "/devices/odk", {"caseworker": "cw.kitgum", "label": "Tecno phone 3"})
    assert answer.status_code == 303  # post/redirect/get: a reload does not set up a second device
    assert "token" not in text(answer) and "password" not in text(answer).lower()
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    body = text(page)
    login = re.search(r"<dt>Username</dt><dd><code>([^<]+)</code>", body).group(1)
    password = re.search(r'<code class="token">([^<]+)</code>', body).group(1)
    assert "<svg" in body and "ODK Collect settings" in body
    phone = OdkPhone(app.test_client(), login, password)
    assert phone.get("/odk/formList").status_code == 200
    with app.app_context():
        device = db.session.execute(db.select(Device).where(Device.odk_username == login)).scalar_one()
        assert device.user.username == "cw.kitgum" and password not in device.odk_password_hash
        assert device.odk_password_hash.startswith("scrypt:")
        device_id = device.id
    # The credentials are shown once: reloading the page shows them no more, and sets up nothing.
    again = client.get(answer.headers["Location"], follow_redirects=True)
    assert password not in text(again) and "was shown once" in text(again)
    assert again.request.path == "/devices"
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Device)).scalar_one() == 1
    # The Devices page revokes it like any device, and the phone is refused at once.
    assert post(client, f"/devices/{device_id}/revoke", {}).status_code == 302
    assert phone.get("/odk/formList").status_code == 403


def test_the_page_of_a_device_enrolled_in_another_session_shows_no_credentials(app, client):
    manager_and_caseworker(app)
    sign_in(client, "boss")
    answer = post(client, "/devices/odk", {"caseworker": "cw.kitgum", "label": "Tecno phone 3"})
    other = app.test_client()
    sign_in(other, "boss")
    page = other.get(answer.headers["Location"])
    assert page.status_code == 302 and page.headers["Location"].endswith("/devices")
    # No such device: no page.
    assert other.get("/devices/odk/00000000-0000-0000-0000-000000000000/enrolled").status_code == 404


def test_the_settings_code_is_what_odk_collect_reads(app):
    with app.app_context():
        settings = json.loads(zlib.decompress(base64.b64decode(collect_settings("odk-abcd1234", "pw"))))
    assert settings["general"]["server_url"] == "http://homecoming.test/odk"
    assert (settings["general"]["username"], settings["general"]["password"]) == ("odk-abcd1234", "pw")
    assert settings["general"]["delete_send"] is True  # sent forms do not stay on the phone


def test_a_form_without_a_caseworker_keeps_what_was_typed_and_says_what_is_missing(app, client):
    manager_and_caseworker(app)
    sign_in(client, "boss")
    page = post(client, "/devices/odk", {"caseworker": "", "label": "Tecno phone 3"})
    assert page.status_code == 422
    assert "Choose an active caseworker." in text(page) and 'value="Tecno phone 3"' in text(page)
    nameless = post(client, "/devices/odk", {"caseworker": "cw.kitgum", "label": ""})
    assert nameless.status_code == 422 and "label of 1 to 120 characters" in text(nameless)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Device)).scalar_one() == 0


def test_wrong_passwords_cost_a_growing_wait_before_any_password_is_hashed(app, client, monkeypatch):
    from models.accounts import Device as DeviceModel
    from models.login_throttle import LoginThrottle
    from tests.odk_phone import odk_phone

    phone = odk_phone(app, client)
    guesser = OdkPhone(client, phone.username, "not-the-password")
    checked = []
    real_check = DeviceModel.odk_password_matches
    monkeypatch.setattr(DeviceModel, "odk_password_matches",
                        lambda self, pw: checked.append(pw) or real_check(self, pw))
    answers = [guesser.get("/odk/formList") for _ in range(5)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429, 429]  # the third failure sets a wait
    refused = answers[3]
    assert refused.status_code == 429 and refused.headers["X-OpenRosa-Version"] == "1.0"
    assert int(refused.headers["Retry-After"]) >= 1
    body = refused.get_data(as_text=True)
    assert "Too many attempts" in body and "<OpenRosaResponse" in body
    assert len(checked) == 3  # the throttled attempts hashed nothing
    # The right password from the same address waits too; from another address it goes through.
    assert phone.get("/odk/formList").status_code == 429
    elsewhere = OdkPhone(app.test_client(), phone.username, phone.password)
    assert elsewhere.client.get("/odk/formList", headers=elsewhere.headers,
                                environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    # Once the wait is over, the right password is let in and clears this address's counter.
    with app.app_context():
        db.session.execute(db.update(LoginThrottle).values(retry_at=None))
        db.session.commit()
    assert phone.get("/odk/formList").status_code == 200
    assert guesser.get("/odk/formList").status_code == 401  # counting from zero again


def test_the_command_line_enrols_a_phone_and_prints_its_credentials_and_code_once(app, runner):
    from server.openrosa.collect_settings import terminal_qr

    manager_and_caseworker(app)
    result = runner.invoke(args=["devices", "enroll-odk", "--user", "cw.kitgum", "--label", "Tecno phone 4"])
    assert result.exit_code == 0, result.output
    login = re.search(r"Username: +(odk-[a-z0-9]{8})", result.output).group(1)
    password = re.search(r"Password: +(\S+)", result.output).group(1)
    assert "Server URL: http://homecoming.test/odk" in result.output
    with app.app_context():
        assert terminal_qr(collect_settings(login, password)) in result.output  # the code Collect scans
        device = db.session.execute(db.select(Device).where(Device.odk_username == login)).scalar_one()
        assert device.label == "Tecno phone 4" and password not in device.odk_password_hash
    assert OdkPhone(app.test_client(), login, password).get("/odk/formList").status_code == 200
    unknown = runner.invoke(args=["devices", "enroll-odk", "--user", "nobody", "--label", "x"])
    assert unknown.exit_code != 0 and "No user named 'nobody'" in unknown.output
    unlabelled = runner.invoke(args=["devices", "enroll-odk", "--user", "cw.kitgum", "--label", " "])
    assert unlabelled.exit_code != 0 and "label of 1 to 120 characters" in unlabelled.output


def test_requests_without_credentials_are_challenged_and_not_counted(app, client):
    from tests.odk_phone import odk_phone

    phone = odk_phone(app, client)
    for _ in range(6):  # Collect asks without credentials first, each time
        challenged = client.get("/odk/formList")
        assert challenged.status_code == 401 and challenged.headers["WWW-Authenticate"].startswith("Basic")
    assert phone.get("/odk/formList").status_code == 200
