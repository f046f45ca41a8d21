"""Latest results and job health -> Prometheus, read at scrape time.

``ResultsCollector`` is registered on the service's injected registry. ``describe()`` names the
known families without touching the database; ``collect()`` reads ``latest_results`` and
``job_state`` over one connection and keeps the built families for ``ttl_seconds`` (jobs write
at most once a minute, so scrapes in between are served from memory, and concurrent scrapes
share one read). If the database cannot be read, the last families read are served again and
the error is logged.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, text

from monitor.errors import StorageError
from monitor.jobs.base import JOB_NAMES
from monitor.storage.engine import translate_errors
from monitor.storage.jobs import JobState, read_job_states

log = logging.getLogger(__name__)

PREFIX = "ml_"
BASE_LABELS = ("model", "model_version", "window")

# Figures the jobs write (Result.metric) and what they mean; any other metric a job writes is
# exported too, untyped, with a generic help text.
KNOWN: Mapping[str, str] = {
    "feature_drift_score": "Drift statistic of a feature in a window (label method)",
    "feature_drift_pvalue": "p-value of the feature's drift test, where the method has one",
    "feature_drift_detected": "1 if the feature drifted in the window after thresholds and guards",
    "dataset_drift_share": "Share of the model's features that drifted in the window",
    "prediction_drift_score": "Drift statistic of the model's output in the window",
    "feature_missing_ratio": "Share of rows with the feature missing",
    "feature_out_of_range_ratio": "Share of numeric values outside the reference range",
    "feature_new_category_ratio": "Share of categorical values unseen in the reference",
    "model_performance": "Model quality from labelled predictions (label metric)",
    "prediction_latency_seconds": "Prediction latency quantile in the window",
    "predictions_per_second": "Predictions per second over the window",
    "prediction_error_ratio": "Share of predictions whose status is not ok",
    "model_load_seconds": "Time the last model load of this version and variant took",
    "cost_per_million_predictions": "Cost of one million predictions in the window",
    "window_samples": "Rows behind a windowed figure (label metric: which figure)",
    "variant_latency_p95_delta_seconds": "p95 latency of a variant minus production's",
    "variant_error_ratio_delta": "Error ratio of a variant minus production's",
    "variant_prediction_drift_score": "Drift of a variant's predictions against production's",
}
GENERIC_HELP = "Figure computed by the ml-monitor jobs"

# Every known figure is a gauge, except the latency quantiles: Prometheus reserves the quantile
# label for summaries (promtool rejects it on a gauge), and a summary is what they are, quantiles
# over a sliding window, only without the cumulative _count and _sum.
SUMMARIES = frozenset({"prediction_latency_seconds"})

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Suffixes Prometheus reserves for counters, histograms and summaries: a gauge named so could
# collide with another collector's series.
_RESERVED_SUFFIXES = ("_total", "_created", "_count", "_sum", "_bucket", "_info")

_LATEST = text(
    'SELECT r.metric, m.name, r.model_version, r."window", r.labels, r.value '
    "FROM latest_results r JOIN models m ON m.id = r.model_id "
    "WHERE r.value IS NOT NULL ORDER BY r.metric"
)


class ResultsCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        *,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        self.engine = engine
        self.ttl = ttl_seconds
        self.clock = clock
        self._families: list[Metric] = []
        self._expires = float("-inf")
        self._mutex = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        families = [Metric(PREFIX + name, doc, _type(name)) for name, doc in KNOWN.items()]
        return families + _job_families()

    def collect(self) -> Iterable[Metric]:
        with self._mutex:
            if self.clock() >= self._expires:
                self._refresh()
            return list(self._families)

    def invalidate(self) -> None:
        """Read again at the next scrape (tests; after a manual run)."""
        with self._mutex:
            self._expires = float("-inf")

    def _refresh(self) -> None:
        try:
            with translate_errors(), self.engine.connect() as conn:
                families = read_families(conn)
        except StorageError:
            log.warning("cannot read results for /metrics; serving the last read", exc_info=True)
            return
        self._families = families
        self._expires = self.clock() + self.ttl


def read_families(conn: Connection) -> list[Metric]:
    """Every latest result and every job's health as metric families."""
    families: dict[str, Metric | None] = {}
    for metric, model, version, window, labels, value in conn.execute(_LATEST):
        if metric not in families:
            families[metric] = _family(metric)
        family = families[metric]
        if family is not None:
            family.add_sample(family.name, _labels(model, version, window, labels), value)
    found = [f for f in families.values() if f is not None]
    return found + _job_families(read_job_states(conn))


def _family(metric: str) -> Metric | None:
    name = PREFIX + metric
    if not _NAME.match(name) or name.endswith(_RESERVED_SUFFIXES):
        log.warning("result metric %r is not exportable; skipped", metric)
        return None
    return Metric(name, KNOWN.get(metric, GENERIC_HELP), _type(metric))


def _type(metric: str) -> str:
    if metric in SUMMARIES:
        return "summary"
    return "gauge" if metric in KNOWN else "unknown"


def _labels(model: str, version: str, window: str, extra: Mapping[str, Any]) -> dict[str, str]:
    labels = {k: str(v) for k, v in extra.items() if _LABEL.match(k) and not k.startswith("__")}
    labels.update(model=model, model_version=version, window=window)
    return labels


def _job_families(states: Iterable[JobState] | None = None) -> list[Metric]:
    """The job health families; without ``states`` (describe) they have no samples."""
    duration = GaugeMetricFamily(
        "monitor_job_duration_seconds", "Duration of the job's last run", labels=["job"]
    )
    success = GaugeMetricFamily(
        "monitor_job_last_success_timestamp_seconds",
        "Unix time the job last finished without a failure",
        labels=["job"],
    )
    failures = CounterMetricFamily(
        "monitor_job_failures", "Job runs that failed for a model", labels=["job"]
    )
    by_job = {s.job: s for s in states or ()}
    for job in sorted(set(JOB_NAMES) | set(by_job)) if states is not None else ():
        state = by_job.get(job)
        failures.add_metric([job], state.failures_total if state else 0)
        if state and state.last_duration_seconds is not None:
            duration.add_metric([job], state.last_duration_seconds)
        if state and state.last_success_at is not None:
            success.add_metric([job], state.last_success_at.timestamp())
    return [duration, success, failures]
