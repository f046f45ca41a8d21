"""POST /v1/predictions and POST /v1/labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import read_body, require_writer, services
from monitor.api.routing import MonitorRoute
from monitor.ingest.decode import decode_batch
from monitor.ingest.service import IngestResult, IngestService

router = APIRouter(
    route_class=MonitorRoute, prefix="/v1", tags=["ingest"], dependencies=[Depends(require_writer)]
)


async def _ingest(
    request: Request, key: str, store: Callable[[IngestService, list[Any]], IngestResult]
) -> dict[str, Any]:
    """Read the body here; decode, check and store it in a worker thread."""
    svc = services(request)
    body = await read_body(request, svc.settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def work() -> dict[str, Any]:
        records = decode_batch(body, content_type, key, svc.settings.max_batch_records)
        return store(svc.ingest, records).as_body()

    return await run_in_threadpool(work)


@router.post("/predictions", summary="Store a batch of prediction logs")
async def post_predictions(request: Request) -> dict[str, Any]:
    """All records are checked first; one bad record rejects the batch (422, every bad record
    named) and nothing is stored. A resent ``prediction_id`` is stored once."""
    return await _ingest(request, "predictions", IngestService.predictions)


@router.post("/labels", summary="Store delayed ground truth, joined by prediction_id")
async def post_labels(request: Request) -> dict[str, Any]:
    """Labels are upserted by (model, prediction_id): the last one sent wins."""
    return await _ingest(request, "labels", IngestService.labels)
