"""A stand-in for ODK Collect in tests: it downloads forms as Collect does, fills the instance the form
defines and sends it as Collect sends it (multipart, ``xml_submission_file`` plus media, HTTP Basic).
Every name here is fictional."""

import base64
import uuid
from xml.etree import ElementTree as ET  # only ever parses the server's own forms

from models import db
from server.openrosa.credentials import enroll_odk_device
from tests.factories import make_user

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # enough of a JPEG for a content check
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class OdkPhone:
    def __init__(self, client, username, password, device_id=None):
        self.client, self.username, self.password, self.device_id = client, username, password, device_id
        self.headers = basic(username, password)

    def get(self, path, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def head(self):
        return self.client.head("/odk/submission", headers=self.headers)

    def blank(self, form_id: str):
        """The form's primary instance, as Collect starts a new filled form from it."""
        response = self.get(f"/odk/forms/{form_id}.xml")
        assert response.status_code == 200, response.data
        root = ET.fromstring(response.data)
        model = next(e for e in root.iter() if e.tag.endswith("}model"))
        data = next(e for e in model if e.tag.endswith("}instance"))[0]
        for e in data.iter():
            e.tag = e.tag.rsplit("}", 1)[-1]
        return data

    def fill(self, form_id: str, answers: dict, *, instance_id=None, deprecated_id=None) -> tuple[bytes, str]:
        """Answers by path inside the instance ("child/given_name"); returns the XML and its instanceID."""
        data = self.blank(form_id)
        for path, value in answers.items():
            node = data.find(path)
            assert node is not None, f"{form_id} has no {path}"
            node.text = value
        instance_id = instance_id or f"uuid:{uuid.uuid4()}"
        data.find("meta/instanceID").text = instance_id
        if deprecated_id:
            ET.SubElement(data.find("meta"), "deprecatedID").text = deprecated_id
        return ET.tostring(data, encoding="utf-8", xml_declaration=True), instance_id

    def submit(self, xml: bytes, media=(), incomplete=False):
        """``media``: (name, bytes, content type) tuples."""
        from io import BytesIO

        parts = {"xml_submission_file": (BytesIO(xml), "submission.xml", "text/xml")}
        files = [(name, (BytesIO(content), name, kind)) for name, content, kind in media]
        body = {**parts, **dict(files)}
        if incomplete:
            body["*isIncomplete*"] = "yes"
        return self.client.post("/odk/submission", headers=self.headers, data=body,
                                content_type="multipart/form-data")


def odk_phone(app, client, username="cw.odk", role="caseworker") -> OdkPhone:
    """An ODK phone enrolled to ``username`` (made first if there is no such user)."""
    from models import User

    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
        user = user or make_user(role, username=username)
        device, login, password = enroll_odk_device(user, "Tecno phone (ODK Collect)", by=None)
        device_id = device.id
        db.session.commit()
    return OdkPhone(client, login, password, device_id)
