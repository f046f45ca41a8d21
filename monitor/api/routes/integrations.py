"""Receivers for what model servers already emit (see docs/integrations.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import read_body, require_writer, services
from monitor.api.routing import MonitorRoute
from monitor.integrations.kserve import Options

router = APIRouter(
    route_class=MonitorRoute, tags=["integrations"], dependencies=[Depends(require_writer)]
)


@router.post(
    "/v1/integrations/kserve",
    summary="CloudEvents from KServe's payload logger or MLServer/Seldon",
)
async def post_kserve(
    request: Request,
    model: Annotated[str | None, Query(max_length=128)] = None,
    version: Annotated[str | None, Query(max_length=64)] = None,
    mode: Annotated[str, Query(max_length=16)] = "all",
) -> dict[str, Any]:
    """Binary (``ce-*`` headers), structured or batch CloudEvents whose data is a KServe V1,
    Open Inference Protocol v2 or Seldon body. Request and response events are joined by their
    id; a call's rows are stored once, however often the events are delivered."""
    svc = services(request)
    options = Options(model=model, version=version, mode=mode)
    body = await read_body(request, svc.settings.max_body_bytes)
    headers = dict(request.headers)

    def work() -> dict[str, Any]:
        return svc.kserve.receive_http(headers, body, options).as_body()

    return await run_in_threadpool(work)
