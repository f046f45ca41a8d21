"""GET /: the status page (``monitor.status_page``), read through storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from monitor.api.deps import ServicesDep, require_reader
from monitor.api.routing import MonitorRoute
from monitor.jobs.runner import windows_for
from monitor.reports import report_window
from monitor.status_page import LATEST_METRICS, SPARK_METRICS, build_view, render
from monitor.storage.history import read_history
from monitor.storage.results import read_latest

# a read like the others: needs a token when MONITOR_READ_TOKENS_REQUIRED is set
router = APIRouter(
    route_class=MonitorRoute, tags=["status"], dependencies=[Depends(require_reader)]
)
DAY = timedelta(days=1)
BUCKET = timedelta(minutes=20)  # 72 points a day per sparkline


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def status_page(
    svc: ServicesDep, window: Annotated[str | None, Query(max_length=8)] = None
) -> HTMLResponse:
    window = window or (svc.settings.windows or ["1h"])[0]
    report_window(window)  # 422 for a malformed window
    now = datetime.now(UTC)
    records = svc.models.list()
    with svc.db.connect() as conn:
        latest = read_latest(conn, metrics=LATEST_METRICS)
        history = {
            r.id: read_history(
                conn, r.id, window=window, since=now - DAY, metrics=SPARK_METRICS, bucket=BUCKET
            )
            for r in records
        }
    views = [
        build_view(r.name, windows_for(r, svc.settings), window, latest, history[r.id])
        for r in records
    ]
    shown = sorted({w for r in records for w in windows_for(r, svc.settings)} | {window})
    return HTMLResponse(render(views, window, shown, now))
