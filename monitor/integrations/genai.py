"""OpenTelemetry GenAI spans -> prediction-log records (one per LLM call).

A span is a GenAI span when it carries the GenAI semantic conventions' model, operation or
usage attributes (``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.operation.name``, ``gen_ai.usage.*``): vLLM's ``llm_request`` spans
(``--otlp-traces-endpoint``), OpenLLMetry's and OpenLIT's LLM spans. Other spans of the same
trace (HTTP handlers, retrievers, workflows) are skipped and counted.

Field by field:

- model: ``gen_ai.response.model``, else ``gen_ai.request.model``, else the resource's
  ``service.name``; characters a model name cannot hold (``/`` in ``meta-llama/Llama-3.1-8B``)
  become ``_``.
- latency: ``gen_ai.latency.e2e`` (vLLM, seconds) when present, else the span's duration.
- time to first token: ``gen_ai.latency.time_to_first_token`` (vLLM) or
  ``gen_ai.server.time_to_first_token`` (seconds); queue time: ``gen_ai.latency.time_in_queue``.
  Both are kept in the record's ``extra`` as ``time_to_first_token_ms`` / ``queue_ms``.
- tokens: ``gen_ai.usage.input_tokens`` / ``output_tokens``, or the deprecated
  ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``.
- status: ``error`` when the span status is ERROR or ``error.type`` is set, else ``ok``.
- features: the numeric request parameters (``gen_ai.request.temperature``, ``top_p``,
  ``max_tokens``, ...), so their drift is watched like any feature.
- id: trace id + span id, so an exporter's retry stores nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from monitor.integrations.otlp_wire import attributes, hex_id

_MODEL_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
_MARKERS = ("gen_ai.request.model", "gen_ai.response.model", "gen_ai.operation.name")
_REQUEST_PARAMETERS = (
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.request.top_k",
    "gen_ai.request.max_tokens",
    "gen_ai.request.frequency_penalty",
    "gen_ai.request.presence_penalty",
    "gen_ai.request.n",
    "gen_ai.request.best_of",
)
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_TTFT = ("gen_ai.latency.time_to_first_token", "gen_ai.server.time_to_first_token")


def model_name(raw: str) -> str:
    """``raw`` in the alphabet model names allow; never empty."""
    name = _MODEL_CHARS.sub("_", raw.strip())[:128].lstrip("_.-")
    return name or "unknown"


def is_genai(attrs: Mapping[str, Any]) -> bool:
    return any(k in attrs for k in _MARKERS) or any(k.startswith("gen_ai.usage.") for k in attrs)


def _first(attrs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if attrs.get(name) is not None:
            return attrs[name]
    return None


def _seconds_as_ms(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * 1000.0
    return None


def span_record(
    span: Span, resource: Mapping[str, Any], version_of: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """The record for one span, or None when it is not a GenAI span.

    ``version_of``: the ``model_version`` a model's configuration declares, if any."""
    attrs = attributes(span.attributes)
    if not is_genai(attrs):
        return None
    model = model_name(
        str(
            attrs.get("gen_ai.response.model")
            or attrs.get("gen_ai.request.model")
            or resource.get("service.name")
            or "unknown"
        )
    )
    start = span.start_time_unix_nano
    latency = _seconds_as_ms(attrs.get("gen_ai.latency.e2e"))
    if latency is None and span.end_time_unix_nano >= start > 0:
        latency = (span.end_time_unix_nano - start) / 1e6
    error = span.status.code == Status.STATUS_CODE_ERROR or attrs.get("error.type") is not None
    record: dict[str, Any] = {
        "prediction_id": hex_id(span.trace_id) + hex_id(span.span_id),
        "model": model,
        "timestamp": datetime.fromtimestamp(start / 1e9, UTC).isoformat() if start else None,
        "features": {
            k: v
            for k in _REQUEST_PARAMETERS
            if isinstance(v := attrs.get(k), int | float) and not isinstance(v, bool)
        },
        "latency_ms": latency,
        "status": "error" if error else "ok",
        "tokens_in": _first(attrs, INPUT_TOKENS),
        "tokens_out": _first(attrs, OUTPUT_TOKENS),
    }
    version = version_of(model)
    if version is not None:
        record["model_version"] = version
    ttft = _seconds_as_ms(_first(attrs, _TTFT))
    if ttft is not None:
        record["time_to_first_token_ms"] = ttft
    queue = _seconds_as_ms(attrs.get("gen_ai.latency.time_in_queue"))
    if queue is not None:
        record["queue_ms"] = queue
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str):
        record["operation"] = operation
    return record
