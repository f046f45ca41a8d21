"""OTLP/gRPC: the OpenTelemetry collector services (traces, logs, metrics) on a port of their
own (``monitor serve --otlp-grpc-port 4317``), for exporters and Collectors that speak gRPC.

Each call is handed to the same ``OtlpReceiver`` as OTLP/HTTP (the request re-encoded as the
protobuf body an HTTP exporter would have posted), so both transports store, count and refuse
alike. Answers follow the OTLP specification's gRPC mapping:

- OK with the service's response, ``partial_success`` naming what was refused;
- UNAUTHENTICATED without a valid ``authorization: Bearer <token>`` metadata entry (when API
  tokens are configured, as for every write);
- INVALID_ARGUMENT for a request the receiver cannot take (not retried);
- UNAVAILABLE, which exporters retry with backoff, while the database is unreachable or too
  many exports are in flight (OTLP/HTTP answers 503 / 429 with ``Retry-After`` there).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from monitor.errors import ClientError, StorageError, TooManyRequests, Unauthorized
from monitor.integrations.otlp import Answer, Body, OtlpReceiver

PROTOBUF = "application/x-protobuf"
WORKERS = 4
"""Threads serving calls; the receiver's own in-flight limit refuses beyond its slots."""

R = TypeVar("R", bound=Message)
Check = Callable[[str | None], None]
"""Raises ``Unauthorized`` unless the ``authorization`` value may write."""


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("grpc's abort returns only by raising")  # pragma: no cover


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode()
    return None


def answer(
    signal: Callable[[Body], Answer],
    request: Message,
    response: type[R],
    context: grpc.ServicerContext,
    check: Check,
) -> R:
    """One export through the receiver, its outcome in gRPC's terms."""
    try:
        check(_authorization(context))
        got = signal(Body(request.SerializeToString(), PROTOBUF, None))
    except Unauthorized as exc:
        _abort(context, grpc.StatusCode.UNAUTHENTICATED, exc.message)
    except TooManyRequests as exc:
        _abort(context, grpc.StatusCode.UNAVAILABLE, exc.message)
    except ClientError as exc:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, exc.message)
    except StorageError:
        _abort(context, grpc.StatusCode.UNAVAILABLE, "the database is unreachable; retry")
    return response.FromString(got.body)


class _Export:
    """One collector service: its ``Export`` call through one of the receiver's signals."""

    def __init__(
        self, signal: Callable[[Body], Answer], reply: type[Message], check: Check
    ) -> None:
        self.signal, self.reply, self.check = signal, reply, check

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(self.signal, request, self.reply, context, self.check)


def otlp_grpc_server(
    receiver: OtlpReceiver, check: Check, host: str, port: int, *, max_message_bytes: int
) -> tuple[grpc.Server, int]:
    """A started-to-be server with the three services bound to ``host:port`` (0: any free
    port), and the port it got. The caller starts and stops it."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="otlp-grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes)],
    )
    # the generated *_pb2_grpc modules carry no annotations
    add_traces = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
    add_logs = logs_service_pb2_grpc.add_LogsServiceServicer_to_server
    add_metrics = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
    traces = _Export(receiver.traces, trace_service_pb2.ExportTraceServiceResponse, check)
    logs = _Export(receiver.logs, logs_service_pb2.ExportLogsServiceResponse, check)
    metrics = _Export(
        receiver.metrics_export, metrics_service_pb2.ExportMetricsServiceResponse, check
    )
    add_traces(traces, server)  # type: ignore[no-untyped-call]
    add_logs(logs, server)  # type: ignore[no-untyped-call]
    add_metrics(metrics, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    return server, bound
