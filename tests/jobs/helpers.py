"""Shared by the job tests: timestamps inside the window, ingest, and reading results back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.jobs.runner import align
from monitor.schemas import ModelConfig
from monitor.services import Services
from monitor.storage.results import read_latest

Key = tuple[str, str, str, frozenset[tuple[str, str]]]  # metric, version, window, labels


def window_end() -> datetime:
    """A window end every test record lies before: the start of the current minute."""
    return align(datetime.now(UTC))


def at(end: datetime, minutes_before: float) -> str:
    return (end - timedelta(minutes=minutes_before)).isoformat()


def predictions(services: Services, model: str, rows: Iterable[Mapping[str, Any]]) -> None:
    services.ingest.predictions([{"model": model, "features": {"x": 1.0}, **row} for row in rows])


def configure(services: Services, model: str, **config: Any) -> None:
    services.models.apply(model, ModelConfig.model_validate(config))


def latest(services: Services, metrics: Iterable[str] | None = None) -> dict[Key, float | None]:
    with services.engine.connect() as conn:
        rows = read_latest(conn, metrics=list(metrics) if metrics else None)
    return {
        (r.metric, r.model_version, r.window, frozenset(r.labels.items())): r.value for r in rows
    }


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())
