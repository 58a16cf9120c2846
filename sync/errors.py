"""Errors about a whole sync request (the envelope, the cursor), as opposed to one mutation's result.

The endpoint turns each into the one JSON error shape with ``status``.
"""


class SyncError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
