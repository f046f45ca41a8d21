"""The retraining webhook outbox: list events (``?status=dead`` for dead letters), retry one."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from monitor.api.deps import ServicesDep, require_reader, require_writer
from monitor.api.routing import MonitorRoute
from monitor.ingest.names import MODEL_NAME
from monitor.storage.outbox import Status, list_events, retry_event

router = APIRouter(route_class=MonitorRoute, prefix="/v1/webhooks", tags=["webhooks"])


@router.get(
    "", dependencies=[Depends(require_reader)], summary="Retraining webhook events, newest first"
)
def get_webhooks(
    svc: ServicesDep,
    status: Status | None = None,
    model: Annotated[str | None, Query(pattern=MODEL_NAME.pattern)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with svc.db.connect() as conn:
        return {"events": list_events(conn, status=status, model=model, limit=limit)}


@router.post(
    "/{event_id}/retry",
    dependencies=[Depends(require_writer)],
    summary="Deliver a dead (or pending) event again, now, with a fresh attempt budget",
)
def post_retry(event_id: UUID, svc: ServicesDep) -> dict[str, Any]:
    with svc.db.begin() as conn:
        return retry_event(conn, event_id)
