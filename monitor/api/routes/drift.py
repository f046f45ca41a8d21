"""GET /v1/models/{model}/drift (latest drift results) and /report (Evidently HTML)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from monitor.api.deps import ServicesDep, require_reader
from monitor.api.routing import MonitorRoute
from monitor.catalogue import (
    DATASET_DRIFT_SHARE,
    FEATURE_DRIFT_SCORE,
    LABEL_DRIFT_SCORE,
    MULTIVARIATE_DRIFT_SCORE,
    PREDICTION_DRIFT_SCORE,
    SEGMENT_DRIFT_DETECTED,
    SEGMENT_WINDOW_SAMPLES,
    WINDOW_SAMPLES,
)
from monitor.errors import NotFound
from monitor.ingest.names import LABEL_VALUE, MODEL_NAME
from monitor.jobs.drift_notes import drift_notes
from monitor.jobs.runner import windows_for
from monitor.reports import render_report, report_window
from monitor.storage.reference_coverage import active_references
from monitor.storage.results import StoredResult, read_latest
from monitor.windows import WINDOW_PATTERN

router = APIRouter(
    route_class=MonitorRoute,
    prefix="/v1/models",
    tags=["drift"],
    dependencies=[Depends(require_reader)],
)
ModelName = Annotated[str, Path(pattern=MODEL_NAME.pattern, max_length=128)]
WindowName = Annotated[
    str, Query(pattern=WINDOW_PATTERN, description="trailing window: 1h, 24h, 7d, ...")
]
Version = Annotated[
    str | None,
    Query(pattern=LABEL_VALUE.pattern, description="model version (default: every version)"),
]

METRICS = (
    FEATURE_DRIFT_SCORE.result,
    DATASET_DRIFT_SHARE.result,
    PREDICTION_DRIFT_SCORE.result,
    LABEL_DRIFT_SCORE.result,
    WINDOW_SAMPLES.result,
    MULTIVARIATE_DRIFT_SCORE.result,
    SEGMENT_DRIFT_DETECTED.result,
    SEGMENT_WINDOW_SAMPLES.result,
)
_MULTIVARIATE_FIELDS = ("threshold", "detected", "top_features", "n_ref", "n_cur", "lower", "upper")
_FEATURE_FIELDS = ("method", "score", "pvalue", "threshold", "detected", "n_ref", "n_cur", "psi")


def _column(row: StoredResult) -> dict[str, Any]:
    details = dict(row.details or {})
    out = {key: details.get(key) for key in _FEATURE_FIELDS}
    out["score"] = row.value
    out["kind"] = details.get("kind")
    out["adjusted_pvalue"] = details.get("adjusted_pvalue")
    return out


def _version(rows: Sequence[StoredResult]) -> dict[str, Any]:
    end = max(r.window_end for r in rows)
    latest = [r for r in rows if r.window_end == end]
    body: dict[str, Any] = {
        "model_version": rows[0].model_version,
        "window_end": end.isoformat(),
        "dataset_drift_share": None,
        "dataset_drift": None,
        "rows": None,
        "reference_rows": None,
        "features": [],
        "prediction": None,
        "label": None,
        "multivariate": {},
        "segments": [],
    }
    segments: dict[str, dict[str, Any]] = {}
    for r in latest:
        details = dict(r.details or {})
        # "threshold" tells the verdict's score from its PSI companion
        if r.metric == FEATURE_DRIFT_SCORE.result and "threshold" in details:
            body["features"].append({"feature": r.labels.get("feature"), **_column(r)})
        elif r.metric == DATASET_DRIFT_SHARE.result:
            body["dataset_drift_share"] = r.value
            body["dataset_drift"] = details.get("dataset_drift")
        elif r.metric == PREDICTION_DRIFT_SCORE.result:
            body["prediction"] = _column(r)
        elif r.metric == LABEL_DRIFT_SCORE.result:
            body["label"] = _column(r)
        elif r.metric == WINDOW_SAMPLES.result and r.labels.get("metric") == "drift":
            body["rows"] = r.value
        elif r.metric == WINDOW_SAMPLES.result and r.labels.get("metric") == "reference":
            body["reference_rows"] = r.value
        elif r.metric == MULTIVARIATE_DRIFT_SCORE.result:
            method = {key: details.get(key) for key in _MULTIVARIATE_FIELDS if key in details}
            body["multivariate"][r.labels.get("method", "")] = {"score": r.value, **method}
        elif r.metric in (SEGMENT_DRIFT_DETECTED.result, SEGMENT_WINDOW_SAMPLES.result):
            _segment(segments, r)
    body["features"].sort(key=lambda f: f["feature"] or "")
    body["segments"] = [segments[k] for k in sorted(segments)]
    return body


def _segment(segments: dict[str, dict[str, Any]], r: StoredResult) -> None:
    """One segment's rows and drifted features (series are top-K + __other__: bounded)."""
    label = r.labels.get("segment", "")
    entry = segments.setdefault(label, {"segment": label, "rows": None, "drifted": []})
    if r.metric == SEGMENT_WINDOW_SAMPLES.result:
        entry["rows"] = r.value
    elif r.value == 1.0:
        details = dict(r.details or {})
        entry["drifted"].append(
            {
                "feature": r.labels.get("feature"),
                "method": r.labels.get("method"),
                "adjusted_pvalue": details.get("adjusted_pvalue"),
            }
        )
        entry["drifted"].sort(key=lambda f: f["feature"] or "")


def drift_body(
    model: str, window: str, version: str | None, rows: Sequence[StoredResult]
) -> dict[str, Any]:
    """The latest drift results of ``model`` in ``window``, per version (newest window end)."""
    by_version: dict[str, list[StoredResult]] = {}
    for r in rows:
        if r.window != window or (version is not None and r.model_version != version):
            continue
        samples_of = r.labels.get("metric")
        if r.metric == WINDOW_SAMPLES.result and samples_of not in ("drift", "reference"):
            continue
        by_version.setdefault(r.model_version, []).append(r)
    versions = [_version(v) for _, v in sorted(by_version.items())]
    ends = [datetime.fromisoformat(v["window_end"]) for v in versions]
    body: dict[str, Any] = {
        "model": model,
        "window": window,
        "model_version": version,
        "window_end": max(ends).isoformat() if ends else None,
        "versions": versions,
    }
    if len(versions) == 1:  # the common case, flat as well
        only = versions[0]
        flat = ("dataset_drift_share", "dataset_drift", "features", "multivariate", "segments")
        body |= {k: only[k] for k in flat}
    return body


@router.get("/{model}/drift", summary="Latest per-feature drift results of a window")
def get_drift(
    model: ModelName, svc: ServicesDep, window: WindowName = "24h", version: Version = None
) -> dict[str, Any]:
    record = svc.models.require(model)
    report_window(window)  # 422 for a malformed window
    configured = windows_for(record, svc.settings)
    if window not in configured:  # never computed: an empty 200 would read as "no drift"
        raise NotFound(
            f"window {window!r} is not computed for model {record.name!r}; its windows are "
            f"{', '.join(configured)} (set 'windows' in the model's configuration)"
        )
    with svc.db.connect() as conn:
        rows = read_latest(conn, record.id, metrics=METRICS)
        references = active_references(conn, record.id)
    return drift_body(record.name, window, version, rows) | {
        "notes": drift_notes(record.name, references)
    }


@router.get(
    "/{model}/report",
    summary="Evidently HTML data-drift report of a window (sampled)",
    response_class=HTMLResponse,
)
def get_report(
    model: ModelName, svc: ServicesDep, window: WindowName = "24h", version: Version = None
) -> HTMLResponse:
    record = svc.models.require(model)
    html = render_report(svc, record, report_window(window), version or "")
    return HTMLResponse(html)
