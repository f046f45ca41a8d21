"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.api.deps import ServicesDep
from monitor.api.routing import MonitorRoute
from monitor.errors import StorageError

log = logging.getLogger(__name__)
router = APIRouter(route_class=MonitorRoute, tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations at head")
def readyz(svc: ServicesDep) -> Any:
    try:
        at_head = svc.db.at_head()
    except StorageError as exc:
        # the driver's text names hosts, ports and users: the log gets it, the answer does not
        log.warning("readiness: the database is not reachable: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    if not at_head:
        return JSONResponse({"status": "migrations pending"}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus exposition", response_class=Response)
def metrics(svc: ServicesDep) -> Response:
    body = svc.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
