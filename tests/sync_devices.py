"""Helpers for tests that drive the reference client: a device enrolled straight in the database, and
a transport that sends the client's HTTP requests to a Flask test client instead of the network."""

from urllib.parse import urlparse

from sync.devices import enroll_device

# The passphrase every test device's local store is sealed under (fictional, like all test data).
PASSPHRASE = "fictional-test-passphrase"


def enrol_device(user, label="Test phone") -> str:
    """A device for ``user``, enrolled the way the CLI and the API enrol one; returns its token."""
    _device, token = enroll_device(user, label, by=None)
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
