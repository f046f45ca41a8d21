"""Counters the ingest path updates as it stores or rejects data (registered on an injected registry)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions_total = PromCounter(
            "ml_predictions_total",
            "Predictions stored (a resent duplicate is not counted again)",
            ["model", "model_version", "status"],
            registry=registry,
        )
        self.rows_total = PromCounter(
            "monitor_ingest_rows_total",
            "Rows accepted by ingest, by kind of data",
            ["kind"],
            registry=registry,
        )
        self.rejected_total = PromCounter(
            "monitor_ingest_rejected_total",
            "Records rejected by ingest, by reason",
            ["reason"],
            registry=registry,
        )

    def stored_predictions(self, model: str, rows: Iterable[Sequence[Any]]) -> None:
        # rows are in storage.ingest.PREDICTION_COLUMNS order: version at 1, status at 9
        counts = Counter((row[1], row[9]) for row in rows)
        for (version, status), n in counts.items():
            self.predictions_total.labels(model, version, status).inc(n)

    def accepted(self, kind: str, n: int) -> None:
        if n:
            self.rows_total.labels(kind).inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        if n:
            self.rejected_total.labels(reason).inc(n)
