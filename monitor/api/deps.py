"""Request helpers shared by the routes: the service graph, auth, bounded body reading."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from monitor.api.auth import TokenVerifier
from monitor.errors import PayloadTooLarge
from monitor.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def tokens(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.tokens
    return verifier


# documented as the ``bearer`` security scheme by monitor.api.openapi, not as a parameter
Authorization = Annotated[str | None, Header(include_in_schema=False)]


def require_writer(request: Request, authorization: Authorization = None) -> None:
    tokens(request).check(authorization)


def require_reader(request: Request, authorization: Authorization = None) -> None:
    """Reads under /v1 need a token too when MONITOR_READ_TOKENS_REQUIRED is set (and tokens
    exist); /metrics, /healthz and /readyz never do."""
    if services(request).settings.read_tokens_required:
        tokens(request).check(authorization)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
