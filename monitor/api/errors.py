"""Every error answer has the SPEC's shape: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.api.openapi import allowed_methods
from monitor.errors import ClientError, StorageError, StorageUnavailable
from monitor.ingest.decode import malformed_json

log = logging.getLogger(__name__)


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


async def _client_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClientError)
    return JSONResponse(exc.as_body(), status_code=exc.status, headers=exc.headers or None)


async def _unavailable(_: Request, __: Exception) -> JSONResponse:
    retry = str(StorageUnavailable.retry_after_seconds)
    return JSONResponse(
        error_body("database_unavailable", "the database is unreachable; retry later"),
        status_code=503,
        headers={"Retry-After": retry},
    )


async def _storage_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("storage error: %s", exc, exc_info=exc)
    return JSONResponse(
        error_body("storage_error", "the database rejected the operation"), status_code=500
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": _field(tuple(e.get("loc", ()))), "problem": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    for e in exc.errors():
        if e.get("type") == "json_invalid":  # FastAPI's parse of a declared body failed
            malformed = malformed_json(_decode_error(e))
            return JSONResponse(malformed.as_body(), status_code=malformed.status)
    return JSONResponse(
        error_body("validation_failed", "the request is invalid", details), status_code=422
    )


def _decode_error(error: Mapping[str, Any]) -> json.JSONDecodeError:
    loc = tuple(error.get("loc", ()))
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    message = str((error.get("ctx") or {}).get("error", "JSON decode error"))
    return json.JSONDecodeError(message, "", position)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # Starlette names one route's methods; the path may have more
        headers["Allow"] = ", ".join(allowed_methods(request.app.openapi(), request.url.path))
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
    )


_HTTP_CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(StorageUnavailable, _unavailable)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
