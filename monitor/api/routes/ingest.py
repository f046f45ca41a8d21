"""POST /v1/predictions and POST /v1/labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import read_body, require_writer, services
from monitor.ingest.decode import decode_batch

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_writer)])

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"predictions": {"type": "array", "items": {"type": "object"}}},
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/predictions", openapi_extra=_BATCH_BODY, summary="Store a batch of prediction logs")
async def post_predictions(request: Request) -> dict[str, Any]:
    """All records are checked first; one bad record rejects the batch (422, every bad record
    named) and nothing is stored. A resent ``prediction_id`` is stored once."""
    svc = services(request)
    body = await read_body(request, svc.settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def work() -> dict[str, Any]:
        records = decode_batch(body, content_type, "predictions")
        return svc.ingest.predictions(records).as_body()

    return await run_in_threadpool(work)


@router.post("/labels", summary="Store delayed ground truth, joined by prediction_id")
async def post_labels(request: Request) -> dict[str, Any]:
    svc = services(request)
    body = await read_body(request, svc.settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def work() -> dict[str, Any]:
        records = decode_batch(body, content_type, "labels")
        return svc.ingest.labels(records).as_body()

    return await run_in_threadpool(work)
