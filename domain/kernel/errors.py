"""Domain errors. The API maps them once (api/errors.py) to RFC 9457 problem+json, /fhir to OperationOutcome."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Richiesta non valida"
    code = "domain_error"
    headers: dict[str, str] | None = None  # HTTP headers the answer must carry (Retry-After...)

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class NotFound(DomainError):
    status = 404
    title = "Risorsa non trovata"
    code = "not_found"


class Conflict(DomainError):
    """An illegal state transition or a uniqueness clash (e.g. a codice fiscale already registered)."""

    status = 409
    title = "Conflitto con lo stato attuale"
    code = "conflict"


class Gone(DomainError):
    """The resource existed and is no longer available (an export file past its expiry)."""

    status = 410
    title = "Risorsa non più disponibile"
    code = "gone"


class Forbidden(DomainError):
    status = 403
    title = "Operazione non consentita"
    code = "forbidden"


class Unauthenticated(DomainError):
    status = 401
    title = "Autenticazione richiesta"
    code = "unauthenticated"


class TooManyRequests(DomainError):
    """A per-user limit was reached; `retry_after` seconds until the next attempt may pass."""

    status = 429
    title = "Troppe richieste"
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class TooLarge(DomainError):
    """A file or a body over its configured size (an import over IMPORT_MAX_BYTES); names the field."""

    status = 413
    title = "Contenuto troppo grande"
    code = "too_large"

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


class Invalid(DomainError):
    """Bad input that passed the schema but broke a domain rule; names the field."""

    status = 422
    title = "Dati non validi"
    code = "invalid"

    def __init__(self, field: str, reason: str, **extra: Any):
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}], **extra)
        self.field = field
        self.reason = reason

    @classmethod
    def many(cls, errors: list[tuple[str, str]]) -> Invalid:
        first = cls(*errors[0])
        first.errors = [{"field": f, "reason": r} for f, r in errors]
        first.detail = "; ".join(f"{f}: {r}" for f, r in errors)
        return first


class InsufficientStorage(DomainError):
    """The volume that keeps files (attachments, export scratch files) is full: nothing was stored, the request
    may be repeated once an operator has made room (docs/operations.md, runbook "Disk full")."""

    status = 507
    title = "Spazio di archiviazione esaurito"
    code = "insufficient_storage"

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])
