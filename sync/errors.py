"""Errors about a whole sync request (the envelope, the cursor), as opposed to one mutation's result.

A ``Problem`` like every other, answered by server/errors.py, which chooses the status from the code.
``status`` repeats that status for tests/test_push_properties.py, which reads it.
"""

from models.errors import Problem


class SyncError(Problem):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(code, message, details)
        self.status = status
