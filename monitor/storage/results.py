"""Computed results: upserted per (model, version, window, metric, labels, window end).

A job re-run for the same window end overwrites its rows, so re-running changes nothing.
``latest_results`` keeps the newest value of each series for the scrape-time collector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

from monitor.storage.database import Database
from monitor.storage.jobs import JobState, read_job_states


@dataclass(frozen=True)
class Result:
    """One figure: ``metric`` is the Prometheus name without ``ml_`` (e.g. feature_drift_score);
    ``labels`` are the extra Prometheus labels (feature, method, variant, quantile, metric,
    currency); ``details`` anything the API should show (threshold, sample sizes, ...)."""

    model_version: str
    window: str
    metric: str
    value: float | None
    labels: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] | None = None


_COLUMNS = 'model_id, model_version, "window", metric, labels, window_end, value, details'
_VALUES = "(:model_id, :model_version, :window, :metric, :labels, :window_end, :value, :details)"
_UPSERT_HISTORY = text(
    f"INSERT INTO results ({_COLUMNS}) VALUES {_VALUES} "
    'ON CONFLICT (model_id, model_version, "window", metric, labels, window_end) DO UPDATE '
    "SET value = excluded.value, details = excluded.details, computed_at = now()"
)
_UPSERT_LATEST = text(
    f"INSERT INTO latest_results ({_COLUMNS}) VALUES {_VALUES} "
    'ON CONFLICT (model_id, model_version, "window", metric, labels) DO UPDATE '
    "SET value = excluded.value, details = excluded.details, window_end = excluded.window_end, "
    "computed_at = now() WHERE latest_results.window_end <= excluded.window_end"
)


def write_results(
    conn: Connection, model_id: int, window_end: datetime, rows: Sequence[Result]
) -> int:
    if not rows:
        return 0
    params = [
        {
            "model_id": model_id,
            "model_version": r.model_version,
            "window": r.window,
            "metric": r.metric,
            "labels": Jsonb(dict(r.labels)),
            "window_end": window_end,
            "value": r.value,
            "details": Jsonb(dict(r.details)) if r.details is not None else None,
        }
        for r in rows
    ]
    conn.execute(_UPSERT_HISTORY, params)
    conn.execute(_UPSERT_LATEST, params)
    return len(rows)


def replace_job_results(
    conn: Connection,
    job: str,
    model_id: int,
    end: datetime,
    windows: Sequence[str],
    rows: Sequence[Result],
) -> int:
    """Upsert ``rows`` (tagged with the job in ``details``), then drop the job's latest values in
    these windows that this run did not write again."""
    tagged = [replace(r, details={**(r.details or {}), "job": job}) for r in rows]
    written = write_results(conn, model_id, end, tagged)
    conn.execute(
        text(
            "DELETE FROM latest_results WHERE model_id = :model_id AND window_end < :end "
            'AND "window" = ANY(:windows) AND details @> :job'
        ),
        {"model_id": model_id, "end": end, "windows": list(windows), "job": Jsonb({"job": job})},
    )
    return written


def performance_baselines(
    conn: Connection, model_id: int, window_end: datetime, days: int
) -> dict[tuple[str, str, str], float]:
    """Average of each (version, window, metric) performance figure over the ``days`` before
    ``window_end``: the same baseline as the MLPerformanceDrop alert rule."""
    rows = conn.execute(
        text(
            "SELECT model_version, \"window\", labels->>'metric', avg(value) FROM results "
            "WHERE model_id = :model_id AND metric = 'model_performance' "
            "AND window_end >= :since AND window_end < :end AND value IS NOT NULL "
            "GROUP BY model_version, \"window\", labels->>'metric'"
        ),
        {"model_id": model_id, "since": window_end - timedelta(days=days), "end": window_end},
    )
    return {(version, window, metric): float(avg) for version, window, metric, avg in rows}


# labels as text, parsed with orjson by the exporter: several times faster than the driver's
# jsonb loader
_EXPORTED = (
    'SELECT r.metric, m.name, r.model_version, r."window", r.labels::text, r.value '
    "FROM latest_results r JOIN models m ON m.id = r.model_id WHERE r.value IS NOT NULL"
)
ExportedRow = tuple[str, str, str, str, str, float]  # metric, model, version, window, labels


def read_exported(db: Database) -> tuple[list[ExportedRow], list[JobState]]:
    """What ``/metrics`` shows, over one connection: every latest result with a value, and
    every job's health."""
    with db.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor(binary=True) as cur:
            rows: list[ExportedRow] = cur.execute(_EXPORTED).fetchall()
        return rows, read_job_states(conn)


@dataclass(frozen=True)
class StoredResult:
    model: str
    model_version: str
    window: str
    metric: str
    labels: Mapping[str, str]
    value: float | None
    window_end: datetime
    details: Mapping[str, Any] | None


def read_latest(
    conn: Connection, model_id: int | None = None, metrics: Sequence[str] | None = None
) -> list[StoredResult]:
    clauses = []
    params: dict[str, Any] = {}
    if model_id is not None:
        clauses.append("r.model_id = :model_id")
        params["model_id"] = model_id
    if metrics:
        clauses.append("r.metric = ANY(:metrics)")
        params["metrics"] = list(metrics)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        text(
            'SELECT m.name, r.model_version, r."window", r.metric, r.labels, r.value, '
            f"r.window_end, r.details FROM latest_results r JOIN models m ON m.id = r.model_id "
            f'{where} ORDER BY m.name, r.model_version, r."window", r.metric'
        ),
        params,
    )
    return [StoredResult(*row) for row in rows]
