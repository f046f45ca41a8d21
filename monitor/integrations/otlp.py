"""``/otlp/v1/traces``, ``/otlp/v1/logs``, ``/otlp/v1/metrics``: OTLP/HTTP in, predictions out.

An exporter configured with ``endpoint=http://host:8000/otlp`` posts here unchanged. Answers
follow the OTLP/HTTP specification: 200 with the response message in the request's encoding;
``partial_success`` counting and naming the items refused (a span whose record fails the ingest
checks, a model over the cardinality cap) while the rest are stored; 400 for a body that cannot
be decoded; 429 with ``Retry-After`` when too many exports are in flight in this process; 503
with ``Retry-After`` while the database is unreachable (the exporter retries both).

- traces: one prediction per GenAI span (``monitor.integrations.genai``); other spans skipped.
- logs: BentoML ``bentoml.monitor`` records (``monitor.integrations.bentoml``); other log
  records skipped.
- metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` histograms,
  summed per model into ``ml_tokens_total{direction}``, ``ml_llm_operations_total`` and
  ``ml_llm_operation_duration_seconds_total`` (``monitor.integrations.genai_metrics``); other
  metrics skipped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from monitor.errors import TooManyRequests, ValidationFailed
from monitor.ingest.service import IngestService
from monitor.ingest_metrics import IngestMetrics
from monitor.integrations import bentoml, genai, otlp_wire
from monitor.integrations.genai_metrics import TokenMeter
from monitor.integrations.otlp_wire import M
from monitor.storage.models import ModelStore

SOURCE = "otlp"
MAX_NAMED_PROBLEMS = 10


@dataclass(frozen=True)
class Body:
    data: bytes
    content_type: str | None
    content_encoding: str | None


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str


@dataclass
class Refused:
    count: int = 0
    message: str = ""


class OtlpReceiver:
    def __init__(
        self,
        ingest: IngestService,
        models: ModelStore,
        metrics: IngestMetrics,
        meter: TokenMeter,
        *,
        max_body_bytes: int,
        max_in_flight: int = 4,
    ) -> None:
        self.ingest = ingest
        self.models = models
        self.metrics = metrics
        self.meter = meter
        self.max_body_bytes = max_body_bytes
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.schemas = bentoml.SchemaMemory()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            self.metrics.dropped(SOURCE, "overloaded")
            raise TooManyRequests("too many OTLP exports in flight; retry shortly")
        try:
            yield
        finally:
            self._slots.release()

    def _version_of(self, model: str) -> str | None:
        record = self.models.get(model)
        return record.options.model_version if record else None

    # -- traces -------------------------------------------------------------------------------

    def _decode(self, body: Body, message: type[M]) -> tuple[str, M]:
        """The export request in ``body`` (protobuf or JSON, gzip or not) and its encoding."""
        encoding = otlp_wire.encoding_of(body.content_type)
        data = otlp_wire.inflate(body.data, body.content_encoding, self.max_body_bytes)
        return encoding, otlp_wire.decode(data, encoding, message)

    def traces(self, body: Body) -> Answer:
        with self._slot():
            encoding, request = self._decode(body, ExportTraceServiceRequest)
            records: list[dict[str, Any]] = []
            spans = skipped = 0
            for resource_spans in request.resource_spans:
                resource = otlp_wire.attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans += 1
                        record = genai.span_record(span, resource, self._version_of)
                        if record is None:
                            skipped += 1
                        else:
                            records.append(record)
            self.metrics.dropped(SOURCE, "not_genai_span", skipped)
            refused = self._store(records, "span")
            self.metrics.accepted("otlp_spans", spans - refused.count)
            response = ExportTraceServiceResponse()
            if refused.count:
                response.partial_success.CopyFrom(
                    ExportTracePartialSuccess(
                        rejected_spans=refused.count, error_message=refused.message
                    )
                )
            return Answer(otlp_wire.encode(response, encoding), encoding)

    # -- logs ---------------------------------------------------------------------------------

    def logs(self, body: Body) -> Answer:
        with self._slot():
            encoding, request = self._decode(body, ExportLogsServiceRequest)
            records: list[dict[str, Any]] = []
            labels: list[Any] = []
            seen: Counter[str] = Counter()
            total = skipped = 0
            for resource_logs in request.resource_logs:
                resource = otlp_wire.attributes(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for log in scope_logs.log_records:
                        total += 1
                        fields = bentoml.body_fields(otlp_wire.value(log.body))
                        if fields is None or not bentoml.is_bentoml(fields):
                            skipped += 1
                            continue
                        request_id = str(fields.get("request_id"))
                        record, label = bentoml.log_record(
                            fields, resource, self.schemas, seen[request_id]
                        )
                        seen[request_id] += 1
                        version = self._version_of(record["model"])
                        if version is not None:
                            record["model_version"] = version
                        records.append(record)
                        labels.append(label)
            self.metrics.dropped(SOURCE, "not_bentoml_log", skipped)
            refused = self._store_with_labels(records, labels)
            self.metrics.accepted("otlp_log_records", total - refused.count)
            response = ExportLogsServiceResponse()
            if refused.count:
                response.partial_success.CopyFrom(
                    ExportLogsPartialSuccess(
                        rejected_log_records=refused.count, error_message=refused.message
                    )
                )
            return Answer(otlp_wire.encode(response, encoding), encoding)

    def _store_with_labels(self, records: list[dict[str, Any]], labels: list[Any]) -> Refused:
        refused, kept = self._store_keeping(records, "log record")
        with_label = [
            {"prediction_id": r["prediction_id"], "model": r["model"], "label": label}
            for r, label in zip(records, labels, strict=True)
            if label is not None and id(r) in kept
        ]
        if with_label:
            try:
                self.ingest.labels(with_label)
            except ValidationFailed as exc:
                refused.count += len({p.index for p in exc.details}) or 1
                refused.message = _join(refused.message, exc.message)
        return refused

    # -- metrics ------------------------------------------------------------------------------

    def metrics_export(self, body: Body) -> Answer:
        with self._slot():
            encoding, request = self._decode(body, ExportMetricsServiceRequest)
            outcome = self.meter.add(request, self._version_of)
            self.metrics.dropped(SOURCE, "unsupported_metric", outcome.skipped)
            self.metrics.accepted("otlp_data_points", outcome.accepted)
            response = ExportMetricsServiceResponse()
            if outcome.rejected:
                response.partial_success.CopyFrom(
                    ExportMetricsPartialSuccess(
                        rejected_data_points=outcome.rejected, error_message=outcome.message
                    )
                )
            return Answer(otlp_wire.encode(response, encoding), encoding)

    # -- storing ------------------------------------------------------------------------------

    def _store(self, records: list[dict[str, Any]], what: str) -> Refused:
        return self._store_keeping(records, what)[0]

    def _store_keeping(self, records: list[dict[str, Any]], what: str) -> tuple[Refused, set[int]]:
        """Store ``records``; records the checks refuse are left out and named, the rest stored
        (each attempt all or nothing). Returns what was refused and the ids of kept records."""
        refused = Refused()
        pending = list(records)
        while pending:  # each refusal removes at least one record
            try:
                self.ingest.predictions(pending)
                break
            except ValidationFailed as exc:
                bad = {p.index for p in exc.details if p.index is not None}
                if not bad:
                    bad = set(range(len(pending)))
                refused.count += len(bad)
                refused.message = _join(refused.message, _describe(exc, pending, what))
                pending = [r for i, r in enumerate(pending) if i not in bad]
        self.metrics.rejected(f"otlp_invalid_{what.replace(' ', '_')}", refused.count)
        return refused, {id(r) for r in pending}


def _describe(exc: ValidationFailed, records: Sequence[Mapping[str, Any]], what: str) -> str:
    parts = []
    for p in exc.details[:MAX_NAMED_PROBLEMS]:
        where = f"{what} {records[p.index]['prediction_id']}" if p.index is not None else what
        parts.append(f"{where}: {p.field or 'record'} {p.problem}")
    more = len(exc.details) - MAX_NAMED_PROBLEMS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
