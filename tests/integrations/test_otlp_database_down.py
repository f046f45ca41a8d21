"""/otlp/v1/traces while PostgreSQL is down: 503 with Retry-After (what an OTLP exporter retries
on), nothing half-stored, and the retried export stored once the database is back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.embedded import EmbeddedPostgres
from monitor.services import build_services
from monitor.storage import migrate
from tests.api.helpers import count
from tests.conftest import reachable_tmp_dir

PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A cluster of this test's own, so it can be stopped without hurting other tests."""
    server = EmbeddedPostgres(reachable_tmp_dir("mm-otlp-down-"))
    server.url = server.ensure_running()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


def export(span_number: int) -> bytes:
    """One vLLM llm_request span, as the SDK's protobuf exporter sends it."""
    begin = int(datetime.now(UTC).timestamp() * 1e9)
    attributes = [
        KeyValue(key="gen_ai.response.model", value=AnyValue(string_value="llama")),
        KeyValue(key="gen_ai.usage.prompt_tokens", value=AnyValue(int_value=12)),
        KeyValue(key="gen_ai.usage.completion_tokens", value=AnyValue(int_value=3)),
    ]
    span = Span(
        trace_id=span_number.to_bytes(16, "big"),
        span_id=(span_number + 1).to_bytes(8, "big"),
        name="llm_request",
        start_time_unix_nano=begin,
        end_time_unix_nano=begin + 200_000_000,
        attributes=attributes,
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    return request.SerializeToString()


def test_an_export_while_the_database_is_down_is_503_with_retry_after_then_stored_once(
    own_server: EmbeddedPostgres,
) -> None:
    settings = Settings(database_url=own_server.url, api_tokens=[])
    svc = build_services(settings, own_server.url, registry=CollectorRegistry())
    migrate.upgrade(svc.engine)
    with TestClient(create_app(svc)) as client:
        first = client.post("/otlp/v1/traces", content=export(1), headers=PROTOBUF)
        assert first.status_code == 200, first.text
        own_server.stop()
        down = client.post("/otlp/v1/traces", content=export(2), headers=PROTOBUF)
        assert down.status_code == 503
        assert down.headers["Retry-After"].isdigit()
        assert int(down.headers["Retry-After"]) > 0
        assert down.json()["error"]["code"] == "database_unavailable"

        own_server.ensure_running()
        for _ in range(2):  # the exporter's retry, and a duplicate of it
            retried = client.post("/otlp/v1/traces", content=export(2), headers=PROTOBUF)
            assert retried.status_code == 200, retried.text
    assert count(svc.engine, "predictions") == 2
    svc.engine.dispose()
