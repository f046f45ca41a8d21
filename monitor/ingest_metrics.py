"""Counters the ingest path updates as it stores or rejects data.

Registered on an injected registry, so tests read a fresh one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from monitor import catalogue
from monitor.storage.rows import PredictionRow


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions_total = _counter(catalogue.PREDICTIONS_TOTAL, registry)
        self.slow_total = _counter(catalogue.PREDICTIONS_OVER_LATENCY_SLO_TOTAL, registry)
        self.rows_total = _counter(catalogue.INGEST_ROWS_TOTAL, registry)
        self.rejected_total = _counter(catalogue.INGEST_REJECTED_TOTAL, registry)

        self.tokens_total = _counter(catalogue.TOKENS_TOTAL, registry)
        self.llm_operations_total = _counter(catalogue.LLM_OPERATIONS_TOTAL, registry)
        self.llm_operation_seconds_total = _counter(
            catalogue.LLM_OPERATION_DURATION_SECONDS_TOTAL, registry
        )
        self.unpaired_total = _counter(catalogue.INGEST_UNPAIRED_TOTAL, registry)
        self.dropped_total = _counter(catalogue.INGEST_DROPPED_TOTAL, registry)

    def stored_predictions(
        self, model: str, rows: Sequence[PredictionRow], slo_latency_ms: float
    ) -> None:
        counts = Counter((row.model_version, row.status) for row in rows)
        for (version, status), n in counts.items():
            self.predictions_total.labels(model, version, status).inc(n)
        for version in {row.model_version for row in rows}:
            # touch every series so rate() over it exists from the first batch on
            self.slow_total.labels(model, version)
        slow = Counter(
            r.model_version
            for r in rows
            if r.latency_ms is not None and r.latency_ms > slo_latency_ms
        )
        for version, n in slow.items():
            self.slow_total.labels(model, version).inc(n)
        tokens: Counter[tuple[str, str]] = Counter()
        for row in rows:
            if row.tokens_in is not None:
                tokens[(row.model_version, "in")] += row.tokens_in
            if row.tokens_out is not None:
                tokens[(row.model_version, "out")] += row.tokens_out
        for (version, direction), n in tokens.items():
            self.tokens_total.labels(model, version, direction).inc(n)

    def accepted(self, kind: str, n: int) -> None:
        if n:
            self.rows_total.labels(kind).inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        if n:
            self.rejected_total.labels(reason).inc(n)

    def unpaired(self, source: str, reason: str, n: int = 1) -> None:
        if n:
            self.unpaired_total.labels(source, reason).inc(n)

    def dropped(self, source: str, reason: str, n: int = 1) -> None:
        if n:
            self.dropped_total.labels(source, reason).inc(n)


def _counter(metric: catalogue.Metric, registry: CollectorRegistry) -> PromCounter:
    return PromCounter(metric.name, metric.help, list(metric.labels), registry=registry)
