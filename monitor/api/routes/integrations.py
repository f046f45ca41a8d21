"""Receivers for what model servers already emit (see docs/integrations.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import read_body, require_writer, services
from monitor.api.routing import MonitorRoute
from monitor.ingest.names import LABEL_VALUE, MODEL_NAME
from monitor.integrations.kserve import MODES, Options
from monitor.integrations.otlp import Answer, Body, OtlpReceiver

router = APIRouter(
    route_class=MonitorRoute, tags=["integrations"], dependencies=[Depends(require_writer)]
)


@router.post(
    "/v1/integrations/kserve",
    summary="CloudEvents from KServe's payload logger or MLServer/Seldon",
)
async def post_kserve(
    request: Request,
    model: Annotated[str | None, Query(pattern=MODEL_NAME.pattern)] = None,
    version: Annotated[str | None, Query(pattern=LABEL_VALUE.pattern)] = None,
    mode: Annotated[str, Query(pattern=f"^({'|'.join(MODES)})$")] = "all",
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


_OTLP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def _otlp(request: Request, signal: Callable[[OtlpReceiver, Body], Answer]) -> Response:
    svc = services(request)
    data = await read_body(request, svc.settings.max_body_bytes)
    body = Body(data, request.headers.get("content-type"), request.headers.get("content-encoding"))
    answer = await run_in_threadpool(signal, svc.otlp, body)
    return Response(answer.body, media_type=answer.content_type)


@router.post("/otlp/v1/traces", openapi_extra=_OTLP_BODY, summary="OTLP/HTTP traces")
async def post_otlp_traces(request: Request) -> Response:
    """One prediction per GenAI span (vLLM, OpenLLMetry, OpenLIT); other spans are skipped."""
    return await _otlp(request, OtlpReceiver.traces)


@router.post("/otlp/v1/logs", openapi_extra=_OTLP_BODY, summary="OTLP/HTTP logs")
async def post_otlp_logs(request: Request) -> Response:
    """BentoML ``bentoml.monitor`` records: features, prediction and label by their role."""
    return await _otlp(request, OtlpReceiver.logs)


@router.post("/otlp/v1/metrics", openapi_extra=_OTLP_BODY, summary="OTLP/HTTP metrics")
async def post_otlp_metrics(request: Request) -> Response:
    """``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``, per model."""
    return await _otlp(request, OtlpReceiver.metrics_export)
