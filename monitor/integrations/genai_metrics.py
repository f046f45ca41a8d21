"""OTLP GenAI client metrics -> per-model counters.

Supported (GenAI semantic conventions): the histograms ``gen_ai.client.token.usage``
(``gen_ai.token.type`` = ``input`` / ``output``; ``prompt`` / ``completion`` accepted too) and
``gen_ai.client.operation.duration`` (seconds). Each data point's sum (and count) is added to
``ml_tokens_total{direction}``, ``ml_llm_operation_duration_seconds_total`` and
``ml_llm_operations_total`` for its model (``gen_ai.response.model``, ``gen_ai.request.model``,
resource ``service.name``). Delta points are added as they are; cumulative points by their
difference from the last point of the same stream this process saw (a lower value is a restart
of the stream and counts whole). Other metrics, and other instrument kinds, are skipped and
counted. Send either traces or these metrics for a model, not both: both would count tokens
twice.

A point whose model would be new beyond ``MONITOR_MAX_MODELS`` is refused
(``partial_success``), and so is one without a usable token type; a model under the cap is
created, so its series appear in the model list like any other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, HistogramDataPoint

from monitor.ingest.cardinality import CardinalityGuard
from monitor.ingest_metrics import IngestMetrics
from monitor.integrations.genai import model_name
from monitor.integrations.otlp_wire import attributes
from monitor.storage.models import ModelStore

TOKEN_USAGE = "gen_ai.client.token.usage"  # noqa: S105 - a metric name
OPERATION_DURATION = "gen_ai.client.operation.duration"
_DIRECTIONS = {"input": "in", "prompt": "in", "output": "out", "completion": "out"}
_MAX_STREAMS = 10_000


@dataclass
class MeterOutcome:
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    message: str = ""

    def refuse(self, problem: str) -> None:
        self.rejected += 1
        if problem not in self.message and len(self.message) < 1_000:
            self.message = f"{self.message}; {problem}" if self.message else problem


class TokenMeter:
    def __init__(self, metrics: IngestMetrics, models: ModelStore, guard: CardinalityGuard) -> None:
        self.metrics = metrics
        self.models = models
        self.guard = guard
        self._last: OrderedDict[tuple[Any, ...], tuple[float, float]] = OrderedDict()
        self._mutex = threading.Lock()

    def add(
        self, request: ExportMetricsServiceRequest, version_of: Callable[[str], str | None]
    ) -> MeterOutcome:
        outcome = MeterOutcome()
        for resource_metrics in request.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if metric.name not in (TOKEN_USAGE, OPERATION_DURATION) or kind != "histogram":
                        outcome.skipped += _points(metric, kind)
                        continue
                    cumulative = (
                        metric.histogram.aggregation_temporality
                        == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
                    )
                    for point in metric.histogram.data_points:
                        self._point(metric.name, point, cumulative, resource, version_of, outcome)
        return outcome

    def _point(
        self,
        name: str,
        point: HistogramDataPoint,
        cumulative: bool,
        resource: Mapping[str, Any],
        version_of: Callable[[str], str | None],
        outcome: MeterOutcome,
    ) -> None:
        attrs = attributes(point.attributes)
        raw = (
            attrs.get("gen_ai.response.model")
            or attrs.get("gen_ai.request.model")
            or resource.get("service.name")
        )
        if not raw:
            outcome.refuse(f"{name}: a point names no model")
            return
        model = model_name(str(raw))
        direction = _DIRECTIONS.get(str(attrs.get("gen_ai.token.type", "")))
        if name == TOKEN_USAGE and direction is None:
            outcome.refuse(f"{name}: gen_ai.token.type must be input or output")
            return
        if not self._admit(model):
            outcome.refuse(f"model {model!r} would exceed MONITOR_MAX_MODELS")
            return
        key = (
            name,
            model,
            tuple(sorted((k, str(v)) for k, v in attrs.items())),
            tuple(sorted((k, str(v)) for k, v in resource.items())),
        )
        total, count = self._increment(key, point, cumulative)
        version = version_of(model) or ""
        if name == TOKEN_USAGE:
            assert direction is not None
            self.metrics.tokens_total.labels(model, version, direction).inc(total)
        else:
            self.metrics.llm_operation_seconds_total.labels(model, version).inc(total)
            self.metrics.llm_operations_total.labels(model, version).inc(count)
        outcome.accepted += 1

    def _increment(
        self, key: tuple[Any, ...], point: HistogramDataPoint, cumulative: bool
    ) -> tuple[float, float]:
        total, count = max(point.sum, 0.0), float(point.count)
        if not cumulative:
            return total, count
        stream = (*key, point.start_time_unix_nano)
        with self._mutex:
            last = self._last.pop(stream, None)
            self._last[stream] = (total, count)
            while len(self._last) > _MAX_STREAMS:
                self._last.popitem(last=False)
        if last is None or total < last[0] or count < last[1]:
            return total, count
        return total - last[0], count - last[1]

    def _admit(self, model: str) -> bool:
        if self.models.get(model) is not None:
            return True
        if self.guard.new_model_problems([(model, 0)]):
            return False
        self.models.ensure(model)
        return True


def _points(metric: Any, kind: str | None) -> int:
    if kind is None:
        return 0
    return len(getattr(metric, kind).data_points)
