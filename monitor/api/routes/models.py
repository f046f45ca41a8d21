"""Model configuration, summaries and reference data sets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import ServicesDep, read_body, require_reader, require_writer, services
from monitor.api.routing import MonitorRoute
from monitor.errors import Problem, ValidationFailed
from monitor.ingest.decode import decode_json, media_type
from monitor.ingest.files import format_for_media, read_bytes
from monitor.ingest.names import LABEL_VALUE, MODEL_NAME
from monitor.ingest.text import require_storable
from monitor.jobs.drift import ensure_profiles
from monitor.schemas import ModelConfig, WindowRef, without_secrets
from monitor.storage.events import recent_events
from monitor.storage.models import ModelRecord
from monitor.storage.references import active_set

router = APIRouter(route_class=MonitorRoute, prefix="/v1/models", tags=["models"])
ModelName = Annotated[str, Path(pattern=MODEL_NAME.pattern, max_length=128)]


@router.put("/{model}", dependencies=[Depends(require_writer)], summary="Create or update a model")
def put_model(
    model: ModelName, config: ModelConfig, svc: ServicesDep, response: Response
) -> dict[str, Any]:
    record, created = svc.models.apply(model, config)
    response.status_code = 201 if created else 200
    return public_summary(record)


def public_summary(record: ModelRecord) -> dict[str, Any]:
    """What reads show of a model: never its webhook secret (write-only)."""
    body = record.summary()
    body["config"] = without_secrets(body["config"])
    return body


@router.get("", dependencies=[Depends(require_reader)], summary="All models")
def list_models(svc: ServicesDep) -> dict[str, Any]:
    return {"models": [public_summary(m) for m in svc.models.list()]}


@router.get(
    "/{model}",
    dependencies=[Depends(require_reader)],
    summary="A model's configuration and latest results",
)
def get_model(model: ModelName, svc: ServicesDep) -> dict[str, Any]:
    record = svc.models.require(model)
    body = public_summary(record)
    with svc.db.connect() as conn:
        ref = active_set(conn, record.id, "")
        body["reference"] = (
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in ref.items()}
            if ref
            else None
        )
        body["events"] = recent_events(conn, record.id, limit=10)
    body["results"] = svc.summaries(record)
    return body


def _window(body: bytes) -> WindowRef:
    doc = decode_json(body)
    require_storable(doc)
    try:
        return WindowRef.model_validate(doc)
    except ValidationError as exc:
        raise ValidationFailed(
            "a window reference needs 'from' and 'to' timestamps",
            [Problem(e["msg"], field=".".join(str(p) for p in e["loc"])) for e in exc.errors()],
        ) from exc


@router.post(
    "/{model}/reference",
    dependencies=[Depends(require_writer)],
    status_code=201,
    summary="Set the reference data set (CSV, Parquet, NDJSON) or freeze a window",
)
async def post_reference(
    model: ModelName,
    request: Request,
    version: Annotated[str, Query(pattern=LABEL_VALUE.pattern)] = "",
) -> dict[str, Any]:
    svc = services(request)
    body = await read_body(request, svc.settings.max_body_bytes)
    kind = media_type(request.headers.get("content-type"))

    def work() -> dict[str, Any]:
        if kind == "application/json":
            window = _window(body)
            result = svc.references.freeze_window(model, version, window.start, window.end)
        else:
            result = svc.references.upload(model, version, read_bytes(body, format_for_media(kind)))
        # freeze the bins with the reference now, not in the next scheduled drift run
        ensure_profiles(svc.context, svc.models.require(model))
        return result.as_body()

    return await run_in_threadpool(work)
