"""/otlp/v1/*: real OpenTelemetry SDK exporters against a live server, and OTLP JSON by hand.

Span attributes are those vLLM sets on its ``llm_request`` span (``vllm/tracing.py``:
``gen_ai.response.model``, ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``,
``gen_ai.latency.time_in_queue`` / ``time_to_first_token`` / ``e2e``) and those of the GenAI
semantic conventions (``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens``, ``gen_ai.operation.name``); the log record is what BentoML's OTLP monitor
logs (its docstring's iris example).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.services import Services
from tests.support.appserver import AppServer, start_app

VLLM_SPAN = {
    "gen_ai.response.model": "meta-llama/Llama-3.1-8B-Instruct",
    "gen_ai.request.id": "cmpl-6f1d2b",
    "gen_ai.request.temperature": 0.7,
    "gen_ai.request.top_p": 0.95,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.request.n": 1,
    "gen_ai.usage.prompt_tokens": 812,
    "gen_ai.usage.completion_tokens": 96,
    "gen_ai.usage.num_sequences": 1,
    "gen_ai.latency.time_in_queue": 0.012,
    "gen_ai.latency.time_to_first_token": 0.184,
    "gen_ai.latency.e2e": 2.31,
}
SEMCONV_SPAN = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 180,
}


@pytest.fixture
def server(services: Services) -> Iterator[AppServer]:
    app_server = start_app(create_app(services))
    yield app_server
    app_server.stop()


def rows(services: Services, where: str = "true") -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT m.name AS model, p.prediction_id, p.tokens_in, p.tokens_out, p.latency_ms,"
                " p.status, p.extra, p.num FROM predictions p JOIN models m ON m.id = p.model_id"
                f" WHERE {where} ORDER BY p.ts"
            )
        ).mappings()
        return [dict(r) for r in found]


def tracer_provider(server: AppServer, **exporter: Any) -> tuple[TracerProvider, OTLPSpanExporter]:
    span_exporter = OTLPSpanExporter(endpoint=f"{server.url}/otlp/v1/traces", **exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "vllm"}))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider, span_exporter


def test_the_sdk_span_exporter_stores_one_prediction_per_genai_span(
    server: AppServer, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the endpoint as users give it: the base URL, the exporter adds /v1/traces
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{server.url}/otlp")
    exporter = OTLPSpanExporter(compression=Compression.Gzip)
    provider = TracerProvider(resource=Resource.create({"service.name": "vllm"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("vllm.entrypoints")
    with (
        tracer.start_as_current_span("POST /v1/chat/completions", kind=SpanKind.SERVER),
        tracer.start_as_current_span("llm_request", kind=SpanKind.SERVER) as span,
    ):
        span.set_attributes(VLLM_SPAN)
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
        span.set_attributes(SEMCONV_SPAN)
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
    provider.shutdown()

    llama = rows(services, "m.name = 'meta-llama_Llama-3.1-8B-Instruct'")
    assert len(llama) == 1
    row = llama[0]
    assert (row["tokens_in"], row["tokens_out"], row["status"]) == (812, 96, "ok")
    assert row["latency_ms"] == pytest.approx(2310.0)
    assert row["extra"]["time_to_first_token_ms"] == pytest.approx(184.0)
    assert row["extra"]["queue_ms"] == pytest.approx(12.0)
    assert len(row["prediction_id"]) == 48  # trace id + span id, hex
    features = services.models.require("meta-llama_Llama-3.1-8B-Instruct").schema.numeric_names
    assert dict(zip(features, row["num"], strict=True))["gen_ai.request.temperature"] == 0.7
    gpt = rows(services, "m.name = 'gpt-4o-2024-08-06'")
    assert [(r["tokens_in"], r["tokens_out"], r["status"]) for r in gpt] == [(100, 180, "error")]
    sample = services.registry.get_sample_value
    assert (
        sample("monitor_ingest_dropped_total", {"source": "otlp", "reason": "not_genai_span"}) == 1
    )
    assert sample("monitor_ingest_rows_total", {"kind": "otlp_spans"}) == 3
    labels = {"model": "meta-llama_Llama-3.1-8B-Instruct", "model_version": ""}
    assert sample("ml_tokens_total", {**labels, "direction": "in"}) == 812
    assert sample("ml_tokens_total", {**labels, "direction": "out"}) == 96


def test_a_retried_export_is_stored_once(server: AppServer, services: Services) -> None:
    provider, exporter = tracer_provider(server)
    tracer = provider.get_tracer("test")
    finished = []
    with tracer.start_as_current_span("llm_request") as span:
        span.set_attributes(VLLM_SPAN)
        finished.append(span)
    assert exporter.export(finished) == SpanExportResult.SUCCESS  # the retry
    provider.shutdown()
    assert len(rows(services)) == 1


def test_a_span_the_checks_refuse_is_named_in_partial_success(
    server: AppServer, services: Services
) -> None:
    provider, _ = tracer_provider(server)
    tracer = provider.get_tracer("test")
    spans = []
    for tokens in (10, -5):
        with tracer.start_as_current_span("chat") as span:
            span.set_attributes({**SEMCONV_SPAN, "gen_ai.usage.input_tokens": tokens})
            spans.append(span)
    provider.shutdown()
    # what the exporter got back, sent again by hand to read the answer
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    r = httpx.post(
        f"{server.url}/otlp/v1/traces",
        content=encode_spans(spans).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 1
    bad_id = spans[1].context.trace_id.to_bytes(16, "big").hex()
    assert bad_id in answer.partial_success.error_message
    assert "tokens_in" in answer.partial_success.error_message
    assert [r["tokens_in"] for r in rows(services)] == [10]


def otlp_json_span(**attrs: Any) -> dict[str, Any]:
    """A span in OTLP/JSON as the specification's example writes it (hex ids, camelCase)."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "chatbot"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.openai"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": "1764756000000000000",
                                "endTimeUnixNano": "1764756000250000000",
                                "attributes": [{"key": k, "value": v} for k, v in attrs.items()],
                                "status": {},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_json_is_accepted_and_answered_in_json(client: TestClient, services: Services) -> None:
    from datetime import UTC, datetime

    body = otlp_json_span(
        **{
            "gen_ai.operation.name": {"stringValue": "chat"},
            "gen_ai.usage.input_tokens": {"intValue": "42"},
            "gen_ai.usage.output_tokens": {"intValue": 7},
        }
    )
    now_ns = int(datetime.now(UTC).timestamp() * 1e9)
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(now_ns), str(now_ns + 250_000_000)
    r = client.post(
        "/otlp/v1/traces",
        content=gzip.compress(orjson.dumps(body)),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    [row] = rows(services)
    assert row["model"] == "chatbot"  # no gen_ai model attribute: the service name
    assert row["prediction_id"] == "5b8efff798038103d269b633813fc60ceee19b7ec3c1b174"
    assert (row["tokens_in"], row["tokens_out"]) == (42, 7)
    assert row["latency_ms"] == pytest.approx(250.0)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "application/x-protobuf"}, b"\xff\xff\xff not protobuf", 400),
        ({"content-type": "application/json"}, b"{not json", 400),
        ({"content-type": "application/json"}, b'{"resourceSpans": 3}', 400),
        ({"content-type": "application/json", "content-encoding": "gzip"}, b"not gzip", 400),
        ({"content-type": "text/plain"}, b"hello", 415),
    ],
)
def test_undecodable_bodies_are_refused(
    client: TestClient, services: Services, headers: dict[str, str], body: bytes, status: int
) -> None:
    r = client.post("/otlp/v1/traces", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert "error" in r.json()
    assert rows(services) == []


def test_too_many_exports_in_flight_is_429_with_retry_after(
    client: TestClient, services: Services
) -> None:
    slots = services.otlp._slots
    held = 0
    while slots.acquire(blocking=False):
        held += 1
    try:
        r = client.post(
            "/otlp/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"}
        )
    finally:
        for _ in range(held):
            slots.release()
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"


IRIS_SCHEMA = {
    "sepal length": {"name": "sepal length", "role": "feature", "type": "numerical"},
    "sepal width": {"name": "sepal width", "role": "feature", "type": "numerical"},
    "petal length": {"name": "petal length", "role": "feature", "type": "numerical"},
    "petal width": {"name": "petal width", "role": "feature", "type": "numerical"},
    "pred": {"name": "pred", "role": "prediction", "type": "categorical"},
    "target": {"name": "target", "role": "target", "type": "categorical"},
}


def test_bentoml_monitor_records_become_predictions_and_labels(
    server: AppServer, services: Services
) -> None:
    from datetime import UTC, datetime

    provider = LoggerProvider(
        resource=Resource.create({"service.name": "iris_classifier:iris_classifier_prediction"})
    )
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{server.url}/otlp/v1/logs"))
    )
    logger = logging.getLogger("bentoml_monitor_data_test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    logger.addHandler(handler)
    try:
        now = datetime.now(UTC).timestamp()
        logger.info(  # exactly what OTLPMonitor.export_data logs, with bento_meta
            {
                "sepal length": 4.9,
                "sepal width": 3.0,
                "petal length": 1.4,
                "petal width": 0.2,
                "pred": "setosa",
                "target": "setosa",
                "timestamp": now,
                "request_id": "6413930528999883196",
                "bento_meta": {
                    "bento_name": "iris_classifier",
                    "bento_version": "not available",
                    "monitor_name": "iris_classifier_prediction",
                    "schema": IRIS_SCHEMA,
                },
            }
        )
        logger.info(  # a later record without bento_meta (meta_sample_rate < 1)
            {
                "sepal length": 6.3,
                "sepal width": 3.3,
                "petal length": 6.0,
                "petal width": 2.5,
                "pred": "virginica",
                "timestamp": now,
                "request_id": "6413930528999883197",
            }
        )
        logging.getLogger("unrelated").info("not a monitor record")
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    model = services.models.require("iris_classifier_prediction")
    assert sorted(model.schema.names) == [
        "petal_length",
        "petal_width",
        "sepal_length",
        "sepal_width",
    ]
    with services.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT prediction_id, prediction_text FROM predictions ORDER BY prediction_id")
        ).all()
        labels = conn.execute(text("SELECT prediction_id, label_text FROM labels")).all()
    assert [tuple(r) for r in stored] == [
        ("6413930528999883196:0", "setosa"),
        ("6413930528999883197:0", "virginica"),
    ]
    assert [tuple(r) for r in labels] == [("6413930528999883196:0", "setosa")]


def test_genai_client_metrics_are_summed_per_model(server: AppServer, services: Services) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{server.url}/otlp/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "chatbot"}), metric_readers=[reader]
    )
    meter = provider.get_meter("opentelemetry.instrumentation.openai")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    other = meter.create_counter("http.server.requests")
    model = {"gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"}
    tokens.record(100, {**model, "gen_ai.token.type": "input"})
    tokens.record(20, {**model, "gen_ai.token.type": "output"})
    duration.record(0.5, model)
    other.add(1)
    assert reader.force_flush()
    tokens.record(50, {**model, "gen_ai.token.type": "input"})  # cumulative: counted once
    duration.record(1.5, model)
    assert reader.force_flush()
    provider.shutdown()
    sample = services.registry.get_sample_value
    labels = {"model": "gpt-4o", "model_version": ""}
    assert sample("ml_tokens_total", {**labels, "direction": "in"}) == 150
    assert sample("ml_tokens_total", {**labels, "direction": "out"}) == 20
    assert sample("ml_llm_operations_total", labels) == 2
    assert sample("ml_llm_operation_duration_seconds_total", labels) == pytest.approx(2.0)
    assert services.models.get("gpt-4o") is not None


def test_time_to_first_token_is_exported_as_a_summary_per_version(
    client: TestClient, services: Services
) -> None:
    from datetime import UTC, datetime

    body = otlp_json_span(
        **{
            "gen_ai.response.model": {"stringValue": "llama"},
            "gen_ai.latency.time_to_first_token": {"doubleValue": 0.25},
        }
    )
    start = int((datetime.now(UTC).timestamp() - 120) * 1e9)
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(start), str(start + 10**9)
    assert client.post("/otlp/v1/traces", json=body).status_code == 200
    assert client.post("/v1/jobs/run?model=llama&job=serving").status_code == 200
    scraped = client.get("/metrics").text
    assert "# TYPE ml_time_to_first_token_seconds summary" in scraped
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    ttft = families["ml_time_to_first_token_seconds"]
    assert ttft.type == "summary"
    values = {
        (s.labels["window"], s.labels["quantile"]): s.value
        for s in ttft.samples
        if s.labels["model"] == "llama"
    }
    assert values[("1h", "0.5")] == pytest.approx(0.25)


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "surrogate"])
def test_a_span_with_an_unstorable_string_is_refused_by_name_and_nothing_stored(
    client: TestClient, services: Services, bad: str
) -> None:
    from datetime import UTC, datetime

    body = otlp_json_span(
        **{
            "gen_ai.operation.name": {"stringValue": f"chat{bad}"},
            "gen_ai.usage.input_tokens": {"intValue": "42"},
        }
    )
    now_ns = int(datetime.now(UTC).timestamp() * 1e9)
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(now_ns), str(now_ns + 1_000_000)
    r = client.post(
        "/otlp/v1/traces",
        content=json.dumps(body),  # ensure_ascii: \u0000, \ud800 as JSON escapes
        headers={"content-type": "application/json"},
    )
    assert r.status_code < 500, r.text
    if r.status_code == 200:  # OTLP's answer to a refused item: partial success, by name
        assert r.json()["partialSuccess"]["rejectedSpans"] in (1, "1")
        assert "operation" in r.json()["partialSuccess"]["errorMessage"]
    else:
        assert r.status_code == 400, r.text
    assert rows(services) == []
