"""POST /v1/jobs/run: the scheduled computations, once, now (same as ``monitor jobs run``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from monitor.api.deps import ServicesDep, require_writer
from monitor.api.routing import MonitorRoute
from monitor.ingest.names import MODEL_NAME
from monitor.jobs.base import JOB_NAMES
from monitor.jobs.runner import run_jobs

router = APIRouter(
    route_class=MonitorRoute,
    prefix="/v1/jobs",
    tags=["jobs"],
    dependencies=[Depends(require_writer)],
)


@router.post("/run", summary="Run the computations now and answer when they are done")
def run(
    svc: ServicesDep,
    model: Annotated[
        str | None, Query(pattern=MODEL_NAME.pattern, description="default: every model")
    ] = None,
    job: Annotated[
        str | None, Query(pattern=f"^({'|'.join(JOB_NAMES)})$", description="default: all")
    ] = None,
) -> dict[str, Any]:
    """Unknown job: 422; unknown model: 404. Failed runs are in the report (``failures``)."""
    return run_jobs(svc, model, job).as_body()
