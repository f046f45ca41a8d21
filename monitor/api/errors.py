"""Every error answer has the SPEC's shape: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import ClientError, StorageError, StorageUnavailable

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
    return JSONResponse(exc.as_body(), status_code=exc.status)


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
    kind = {e.get("type") for e in exc.errors()}
    status, code = (400, "malformed_body") if "json_invalid" in kind else (422, "validation_failed")
    return JSONResponse(error_body(code, "the request is invalid", details), status_code=status)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(StorageUnavailable, _unavailable)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
