"""A model's latest results for ``GET /v1/models/{model}``, grouped per window and metric."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from monitor.storage.engine import translate_errors
from monitor.storage.models import ModelRecord
from monitor.storage.results import read_latest


def results_summary(engine: Engine, record: ModelRecord) -> dict[str, Any]:
    """``{"window_end": newest, "windows": {window: {metric: [{model_version, labels, value,
    window_end}]}}}``; the metric is the Prometheus name without ``ml_``."""
    with translate_errors(), engine.connect() as conn:
        rows = read_latest(conn, record.id)
    windows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        windows.setdefault(r.window, {}).setdefault(r.metric, []).append(
            {
                "model_version": r.model_version,
                "labels": dict(r.labels),
                "value": r.value,
                "window_end": r.window_end.isoformat(),
            }
        )
    newest = max((r.window_end for r in rows), default=None)
    return {"window_end": newest.isoformat() if newest else None, "windows": windows}
