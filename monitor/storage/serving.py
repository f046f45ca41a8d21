"""Serving aggregates of a window, computed in PostgreSQL: Python receives one row per group.

Groups are (model_version, variant); each query also returns the pooled row per variant
(``model_version`` None, from ``GROUPING SETS``), which is production's baseline when a canary
or shadow variant is compared with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

from monitor.storage.database import Database
from monitor.storage.span import Span

OTHER = "\x00other"
"""The bucket of every category outside production's most frequent ones (never a stored value:
PostgreSQL text cannot hold NUL)."""

Floats = npt.NDArray[np.float64]

_WHERE = "model_id = :model_id AND ts >= :start AND ts < :end"
_GROUPS = "GROUPING SETS ((model_version, variant), (variant))"
# only a JSON number: a client's odd extra field must not break the job with a failed cast
_TTFT_MS = (
    "CASE WHEN jsonb_typeof(extra->'time_to_first_token_ms') = 'number' "
    "THEN (extra->>'time_to_first_token_ms')::float8 END"
)
_VERSION = "CASE WHEN GROUPING(model_version) = 0 THEN model_version END"


@dataclass(frozen=True)
class GroupStats:
    """Counts and latency quantiles (milliseconds) of one (version, variant) group."""

    model_version: str | None  # None: every version of the variant pooled
    variant: str
    total: int
    errors: int
    latency_ms: dict[float, float]
    ttft_ms: dict[float, float] = field(default_factory=dict)
    """Time-to-first-token quantiles, from ``extra.time_to_first_token_ms`` (OTLP GenAI spans)."""


def group_stats(db: Database, span: Span, quantiles: Sequence[float]) -> list[GroupStats]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_VERSION}, variant, count(*), count(*) FILTER (WHERE status <> 'ok'), "
                "percentile_cont(CAST(:q AS float8[])) WITHIN GROUP (ORDER BY latency_ms), "
                f"percentile_cont(CAST(:q AS float8[])) WITHIN GROUP (ORDER BY {_TTFT_MS}) "
                f"FROM predictions WHERE {_WHERE} GROUP BY {_GROUPS}"
            ),
            span.params(q=list(quantiles)),
        )
        return [
            GroupStats(
                version,
                variant,
                total,
                errors,
                _quantiles(quantiles, qs),
                _quantiles(quantiles, ttft),
            )
            for version, variant, total, errors, qs, ttft in rows
        ]


def _quantiles(
    quantiles: Sequence[float], values: Sequence[float | None] | None
) -> dict[float, float]:
    if values is None:
        return {}
    return {q: v for q, v in zip(quantiles, values, strict=True) if v is not None}


@dataclass(frozen=True)
class PredictionShape:
    """Production's numeric prediction quantiles and the window's distinct prediction count."""

    numeric: bool
    n_unique: int
    production_quantiles: Floats


def prediction_shape(db: Database, span: Span, probabilities: Sequence[float]) -> PredictionShape:
    with db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(prediction) >= count(prediction_text), "
                "count(DISTINCT coalesce(prediction_text, prediction::text)), "
                "percentile_cont(CAST(:p AS float8[])) WITHIN GROUP (ORDER BY prediction) "
                "FILTER (WHERE variant = 'production') "
                f"FROM predictions WHERE {_WHERE}"
            ),
            span.params(p=list(probabilities)),
        ).one()
        numeric, n_unique, quantiles = row
        values = [q for q in (quantiles or []) if q is not None]
        return PredictionShape(bool(numeric), int(n_unique), np.asarray(values, dtype=np.float64))


@dataclass(frozen=True)
class BinnedGroup:
    """Per-bin count, sum and sum of squares of one group's numeric predictions."""

    model_version: str | None
    variant: str
    counts: Floats
    sums: Floats
    sumsq: Floats


def binned_predictions(db: Database, span: Span, edges: Floats) -> list[BinnedGroup]:
    """Numeric predictions rolled up on interior ``edges`` (bin i: edges[i-1] <= x < edges[i])."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_VERSION}, variant, "
                "width_bucket(prediction, CAST(:edges AS float8[])) AS b, "
                "count(*), sum(prediction), sum(prediction * prediction) "
                f"FROM predictions WHERE {_WHERE} AND prediction IS NOT NULL "
                "GROUP BY GROUPING SETS ((model_version, variant, b), (variant, b))"
            ),
            span.params(edges=edges.tolist()),
        )
        n_bins = edges.size + 1
        groups: dict[tuple[str | None, str], BinnedGroup] = {}
        for version, variant, b, count, total, squares in rows:
            group = groups.get((version, variant))
            if group is None:
                group = BinnedGroup(
                    version, variant, np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
                )
                groups[(version, variant)] = group
            group.counts[b], group.sums[b], group.sumsq[b] = count, total, squares
        return list(groups.values())


@dataclass(frozen=True)
class CategoryGroup:
    model_version: str | None
    variant: str
    counts: dict[str, float]


def category_predictions(db: Database, span: Span, top: int) -> list[CategoryGroup]:
    """Counts per prediction value (text, or a numeric value as text) per group; values outside
    production's ``top`` most frequent ones are counted together under ``OTHER``."""
    with db.connect() as conn:
        value = "coalesce(prediction_text, prediction::text)"
        rows = conn.execute(
            text(
                f"WITH top AS (SELECT {value} AS v FROM predictions "
                f"WHERE {_WHERE} AND variant = 'production' AND {value} IS NOT NULL "
                "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT :top), "
                f"p AS (SELECT model_version, variant, top.v "
                f"FROM predictions LEFT JOIN top ON top.v = {value} "
                f"WHERE {_WHERE} AND {value} IS NOT NULL) "
                f"SELECT {_VERSION}, variant, v, count(*) FROM p "
                "GROUP BY GROUPING SETS ((model_version, variant, v), (variant, v))"
            ),
            span.params(top=top),
        )
        groups: dict[tuple[str | None, str], CategoryGroup] = {}
        for version, variant, v, count in rows:
            group = groups.setdefault((version, variant), CategoryGroup(version, variant, {}))
            group.counts[OTHER if v is None else v] = count
        return list(groups.values())


@dataclass(frozen=True)
class ModelLoad:
    model_version: str
    variant: str
    load_seconds: float
    ts: datetime


def latest_loads(db: Database, model_id: int, before: datetime) -> list[ModelLoad]:
    """The latest ``model_loaded`` event with a load time per (version, variant) before a time."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT ON (model_version, coalesce(variant, 'production')) "
                "model_version, "
                "coalesce(variant, 'production'), load_seconds, ts FROM events "
                "WHERE model_id = :model_id AND kind = 'model_loaded' AND load_seconds IS NOT NULL "
                "AND ts < :before ORDER BY model_version, coalesce(variant, 'production'), ts DESC"
            ),
            {"model_id": model_id, "before": before},
        )
        return [ModelLoad(*row) for row in rows]


@dataclass(frozen=True)
class DeploymentEvent:
    model_version: str
    variant: str
    kind: str
    ts: datetime


def latest_events(
    db: Database, model_id: int, since: datetime, before: datetime
) -> list[DeploymentEvent]:
    """The latest event of each kind per (version, variant) in ``[since, before)``."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT ON (model_version, coalesce(variant, 'production'), kind) "
                "model_version, coalesce(variant, 'production'), kind, ts FROM events "
                "WHERE model_id = :model_id AND ts >= :since AND ts < :before "
                "ORDER BY model_version, coalesce(variant, 'production'), kind, ts DESC"
            ),
            {"model_id": model_id, "since": since, "before": before},
        )
        return [DeploymentEvent(*row) for row in rows]
