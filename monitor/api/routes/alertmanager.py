"""POST /v1/alertmanager: Alertmanager's webhook receiver (payload version 4).

Firing alerts labelled ``action="retrain"`` become retraining events (reason ``alert``). The
whole notification is refused when it cannot be used, so nothing is half-stored:
malformed JSON 400; wrong ``version`` or shape 422; a retrain alert without a ``model`` label
422; a retrain alert naming an unknown model 404. Alertmanager does not retry 4xx answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from monitor.api.deps import ServicesDep, require_writer
from monitor.api.routing import MonitorRoute
from monitor.webhooks.alertmanager import AlertmanagerPayload, receive_alerts

router = APIRouter(
    route_class=MonitorRoute,
    prefix="/v1",
    tags=["alertmanager"],
    dependencies=[Depends(require_writer)],
)


@router.post("/alertmanager", summary="Alertmanager webhook receiver: retrain alerts -> webhook")
def post_alertmanager(payload: AlertmanagerPayload, svc: ServicesDep) -> dict[str, Any]:
    return receive_alerts(svc.context, payload)
