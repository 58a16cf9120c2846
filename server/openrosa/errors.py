"""The one error of the OpenRosa endpoints: an ``OpenRosaResponse`` whose message the phone shows."""


class OpenRosaError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
