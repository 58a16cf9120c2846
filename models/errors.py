"""Errors the domain raises. The server maps ``code`` to an HTTP status; sync maps it to a result."""


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, details: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class InvalidTransition(DomainError):
    code = "invalid_transition"


class ManagerOnly(DomainError):
    code = "manager_only"


class RecordDeleted(DomainError):
    code = "record_deleted"


class RecordDeidentified(RecordDeleted):
    """Retention erased the child's identity (models.retention): its case can be neither edited nor
    reopened; a child who comes back is registered as a new case."""

    code = "record_deidentified"


class FieldErrors(DomainError):
    """Business-rule failures tied to fields, shaped like marshmallow's messages."""

    code = "validation_error"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("Some fields are not valid.", {"fields": errors})
        self.errors = errors
