"""A model's figures over time, averaged per bucket: the status page's sparklines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class Point:
    model_version: str
    metric: str
    labels: Mapping[str, str]
    bucket: datetime
    value: float


_SQL = text(
    "SELECT model_version, metric, labels, "
    "date_bin(make_interval(secs => :bucket), window_end, :since) AS b, avg(value) "
    'FROM results WHERE model_id = :model_id AND "window" = :window AND window_end >= :since '
    "AND metric = ANY(:metrics) AND value IS NOT NULL "
    "GROUP BY model_version, metric, labels, b ORDER BY model_version, metric, b"
)


def read_history(
    conn: Connection,
    model_id: int,
    *,
    window: str,
    since: datetime,
    metrics: Sequence[str],
    bucket: timedelta,
) -> list[Point]:
    """Per (version, metric, labels): the mean value in each ``bucket`` since ``since``."""
    rows = conn.execute(
        _SQL,
        {
            "model_id": model_id,
            "window": window,
            "since": since,
            "metrics": list(metrics),
            "bucket": bucket.total_seconds(),
        },
    )
    return [Point(*row) for row in rows]
