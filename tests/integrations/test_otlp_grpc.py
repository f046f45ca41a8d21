"""OTLP/gRPC: the OpenTelemetry SDK's own gRPC exporters against the server ``monitor serve
--otlp-grpc-port`` runs, and raw gRPC calls for the status codes of the OTLP specification's
gRPC mapping (UNAUTHENTICATED, UNAVAILABLE for a database that is down)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from monitor.api.auth import TokenVerifier
from monitor.errors import StorageUnavailable
from monitor.integrations.otlp_grpc import otlp_grpc_server
from monitor.services import Services
from tests.integrations.test_otlp import SEMCONV_SPAN, VLLM_SPAN, rows
from tests.integrations.test_otlp_database_down import export

TOKEN = "s3cret-token"


def _serve(services: Services, tokens: list[str]) -> Iterator[int]:
    check = TokenVerifier(services.engine, tokens).check
    server, port = otlp_grpc_server(services.otlp, check, "127.0.0.1", 0, max_message_bytes=1 << 20)
    server.start()
    yield port
    server.stop(grace=None).wait()


@pytest.fixture
def port(services: Services) -> Iterator[int]:
    yield from _serve(services, [])


@pytest.fixture
def guarded_port(services: Services) -> Iterator[int]:
    yield from _serve(services, [TOKEN])


def _call(port: int, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        request = ExportTraceServiceRequest.FromString(body)
        return stub.Export(request, metadata=metadata, timeout=10)


def test_the_sdk_grpc_exporter_stores_one_prediction_per_genai_span(
    port: int, services: Services
) -> None:
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": "vllm"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("vllm.entrypoints")
    with tracer.start_as_current_span("llm_request", kind=SpanKind.SERVER) as span:
        span.set_attributes(VLLM_SPAN)
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
        span.set_attributes(SEMCONV_SPAN)
    with tracer.start_as_current_span("GET /healthz"):
        pass  # not a GenAI span: skipped and counted
    provider.shutdown()

    llama = rows(services, "m.name = 'meta-llama_Llama-3.1-8B-Instruct'")
    assert [(r["tokens_in"], r["tokens_out"]) for r in llama] == [(812, 96)]
    assert llama[0]["latency_ms"] == pytest.approx(2310.0)
    gpt = rows(services, "m.name = 'gpt-4o-2024-08-06'")
    assert [(r["tokens_in"], r["tokens_out"]) for r in gpt] == [(100, 180)]
    skipped = services.registry.get_sample_value(
        "monitor_ingest_dropped_total", {"source": "otlp", "reason": "not_genai_span"}
    )
    assert skipped == 1.0


def test_a_resent_export_is_stored_once(port: int, services: Services) -> None:
    body = export(7)
    first, again = _call(port, body), _call(port, body)
    assert first == again == ExportTraceServiceResponse()
    assert len(rows(services)) == 1


def test_a_span_the_checks_refuse_is_named_in_partial_success(
    port: int, services: Services
) -> None:
    request = ExportTraceServiceRequest.FromString(export(1))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    (prompt_tokens,) = [a for a in span.attributes if a.key == "gen_ai.usage.prompt_tokens"]
    prompt_tokens.value.int_value = -5  # a token count below 0: the ingest checks refuse it
    answer = _call(port, request.SerializeToString())
    assert answer.partial_success.rejected_spans == 1
    assert "tokens_in" in answer.partial_success.error_message
    assert rows(services) == []


def test_writes_need_the_bearer_token_when_tokens_are_configured(
    guarded_port: int, services: Services
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _call(guarded_port, export(2))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rows(services) == []
    _call(guarded_port, export(2), (("authorization", f"Bearer {TOKEN}"),))
    assert len(rows(services)) == 1


def test_a_database_that_is_down_is_unavailable_which_exporters_retry(
    port: int, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise StorageUnavailable("the database is unreachable")

    monkeypatch.setattr(services.otlp.ingest, "predictions", down)
    with pytest.raises(grpc.RpcError) as refused:
        _call(port, export(3))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    monkeypatch.undo()
    _call(port, export(3))  # the exporter's retry, once the database is back
    assert len(rows(services)) == 1


def test_serve_starts_the_grpc_server_on_the_configured_port(services: Services) -> None:
    import dataclasses

    from monitor.server import _otlp_grpc
    from tests.support.appserver import free_port

    wanted = free_port()
    settings = services.settings.model_copy(update={"otlp_grpc_port": wanted})
    server = _otlp_grpc(dataclasses.replace(services, settings=settings), "127.0.0.1")
    assert server is not None
    try:
        assert _call(wanted, export(4)) == ExportTraceServiceResponse()
    finally:
        server.stop(grace=None).wait()
    assert len(rows(services)) == 1
