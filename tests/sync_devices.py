"""Helpers for tests that drive the reference client: a device enrolled straight in the database, and
a transport that sends the client's HTTP requests to a Flask test client instead of the network."""

from urllib.parse import urlparse

from models import Device, db


def enrol_device(user, label="Test phone") -> str:
    """A device for ``user``; returns its token (only the hash is stored, as at a real enrolment)."""
    token = Device.new_secret()
    db.session.add(Device(user_id=user.id, label=label, token_hash=Device.hash_secret(token)))
    db.session.flush()
    return token


class FlaskTransport:
    """The reference client's transport, answered in-process by ``app.test_client()``."""

    def __init__(self, test_client):
        self.test_client = test_client

    def __call__(self, method, url, headers, body):
        parsed = urlparse(url)
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        response = self.test_client.open(path, method=method, headers=headers, data=body)
        return response.status_code, dict(response.headers), response.get_data()
