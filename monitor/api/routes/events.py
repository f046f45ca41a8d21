"""POST /v1/events: deployments, rollbacks, model loads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from monitor.api.deps import ServicesDep, require_writer
from monitor.api.routing import MonitorRoute
from monitor.schemas import EventIn
from monitor.storage.events import add_event

router = APIRouter(
    route_class=MonitorRoute, prefix="/v1", tags=["events"], dependencies=[Depends(require_writer)]
)


@router.post("/events", status_code=201, summary="Record a deployment event")
def post_event(event: EventIn, svc: ServicesDep) -> dict[str, Any]:
    """The timestamp (default: now) must lie within retention and the near future, as a
    prediction's; otherwise 422 and nothing is stored (not even the model)."""
    ts = svc.ingest.event_time(event.timestamp)
    with svc.db.begin() as conn:
        record = svc.models.ensure_in(conn, event.model)
        event_id = add_event(
            conn,
            record.id,
            kind=event.event,
            version=event.model_version,
            variant=event.variant,
            ts=ts,
            load_seconds=event.load_seconds,
            details=event.details,
        )
    return {"id": event_id, "model": event.model, "event": event.event}
