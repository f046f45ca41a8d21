"""The one exception tree of ml-monitor.

    MonitorError
     ├── ConfigError                 settings or model configuration that cannot work
     ├── ClientError                 the caller's fault; carries an HTTP status and details
     │    ├── MalformedBody          400  body is not JSON / NDJSON / CSV / Parquet we can read
     │    ├── Unauthorized           401  missing or unknown bearer token
     │    ├── NotFound               404
     │    ├── Conflict               409
     │    ├── PayloadTooLarge        413
     │    ├── UnsupportedMediaType   415
     │    ├── ValidationFailed       422  well-formed but wrong; names every bad record
     │    └── TooManyRequests        429  overloaded right now (with Retry-After)
     ├── StorageError                the database did something we did not expect
     │    └── StorageUnavailable     the database cannot be reached (HTTP 503 + Retry-After)
     ├── BrokerError                 a message broker (``monitor consume``) refused or failed
     │    └── BrokerUnavailable      the broker cannot be reached
     └── EmbeddedServerError         the embedded PostgreSQL could not be started or reached

Errors from drivers and HTTP libraries are translated at the boundary that sees them
(``storage.engine.translate_errors``) and re-raised ``from`` the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _printable(text: str) -> str:
    """``text`` with lone surrogates spelt ``\\udXXX``: an answer naming a field that holds one
    must itself be encodable as UTF-8."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record or field of a request."""

    problem: str
    index: int | None = None
    field: str | None = None
    position: int | None = None  # character offset in a malformed body (or NDJSON line)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.index is not None:
            out["index"] = self.index
        if self.field is not None:
            out["field"] = _printable(self.field)
        if self.position is not None:
            out["position"] = self.position
        out["problem"] = _printable(self.problem)
        return out


class MonitorError(Exception):
    """Root of every error ml-monitor raises on purpose."""


class ConfigError(MonitorError):
    pass


class EmbeddedServerError(MonitorError):
    pass


class StorageError(MonitorError):
    pass


class StorageUnavailable(StorageError):
    retry_after_seconds = 5


class BrokerError(MonitorError):
    pass


class BrokerUnavailable(BrokerError):
    pass


class ClientError(MonitorError):
    status = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, details: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def as_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": _printable(self.message)}
        if self.details:
            error["details"] = [d.as_dict() for d in self.details]
        return {"error": error}


class MalformedBody(ClientError):
    status = 400
    code = "malformed_body"


class Unauthorized(ClientError):
    status = 401
    code = "unauthorized"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class Conflict(ClientError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(ClientError):
    status = 422
    code = "validation_failed"


class TooManyRequests(ClientError):
    status = 429
    code = "too_many_requests"
    retry_after_seconds = 1
    headers = {"Retry-After": str(retry_after_seconds)}  # noqa: RUF012 - read only
