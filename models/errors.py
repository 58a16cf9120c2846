"""One error family for the whole app: a ``Problem`` has a ``code`` a program acts on, a ``message`` a
person can act on and ``details`` (per-field messages under ``fields``). Only ``server/`` turns a code
into an HTTP status (server/errors.py); sync turns a mutation's problem into its result."""


class Problem(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class _Named(Problem):
    """A problem raised in several places: the class names its code once."""

    code = "problem"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(type(self).code, message, details)


class InvalidTransition(_Named):
    code = "invalid_transition"


class ManagerOnly(_Named):
    code = "manager_only"


class RecordDeleted(_Named):
    code = "record_deleted"


class RecordDeidentified(RecordDeleted):
    """Retention erased the child's identity (models.retention): its case can be neither edited nor
    reopened; a child who comes back is registered as a new case."""

    code = "record_deidentified"


class FieldErrors(Problem):
    """Business-rule failures tied to fields, shaped like marshmallow's messages."""

    def __init__(self, errors: dict[str, list[str]], message: str = "Some fields are not valid."):
        super().__init__("validation_error", message, {"fields": errors})
        self.errors = errors
