"""BentoML's ``bentoml.monitor`` OTLP log records -> prediction-log records.

BentoML's OTLP monitor (``bentoml/_internal/monitoring/otlp.py``) logs one record per logged
row through the OpenTelemetry logging handler: the body is a map of the row's fields plus
``timestamp`` (epoch seconds), ``request_id`` and, at ``meta_sample_rate``, ``bento_meta`` with
the ``monitor_name`` and a ``schema`` giving each field's ``role`` (``feature``, ``prediction``,
``target``) and ``type`` (``numerical``, ``categorical``). The resource's ``service.name`` is
``<bento_name>:<monitor_name>``.

Fields become features, the prediction and a label by their role. A record that arrives
without ``bento_meta`` uses the last schema seen for its monitor in this process; with none
seen yet, its fields are features.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Mapping
from typing import Any

import orjson

from monitor.integrations.genai import model_name

_FEATURE_CHARS = re.compile(r"[^A-Za-z0-9_.\-:/]")  # "sepal length" -> "sepal_length"
_PRESERVED = frozenset({"timestamp", "request_id", "bento_meta"})
_MAX_SCHEMAS = 1_000


class SchemaMemory:
    """The last ``bento_meta.schema`` seen per monitor (bounded: payloads name the monitors)."""

    def __init__(self) -> None:
        self._schemas: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()

    def see(self, monitor: str, schema: Mapping[str, Any]) -> None:
        with self._mutex:
            if monitor in self._schemas or len(self._schemas) < _MAX_SCHEMAS:
                self._schemas[monitor] = dict(schema)

    def get(self, monitor: str) -> dict[str, Any]:
        with self._mutex:
            return self._schemas.get(monitor, {})


def body_fields(body: Any) -> dict[str, Any] | None:
    """The body as a map: an OTLP kvlist, or the text of a dict (older SDKs log ``str(dict)``)."""
    if isinstance(body, dict):
        return body
    if isinstance(body, str) and body.startswith("{") and len(body) < 1_000_000:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:
                parsed = ast.literal_eval(body)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
        return parsed if isinstance(parsed, dict) else None
    return None


def is_bentoml(fields: Mapping[str, Any]) -> bool:
    return "request_id" in fields and "timestamp" in fields


def monitor_of(fields: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    meta = fields.get("bento_meta")
    if isinstance(meta, dict) and isinstance(meta.get("monitor_name"), str):
        return str(meta["monitor_name"])
    service = str(resource.get("service.name") or "bentoml")
    return service.rsplit(":", 1)[-1]


def log_record(
    fields: Mapping[str, Any], resource: Mapping[str, Any], schemas: SchemaMemory, index: int
) -> tuple[dict[str, Any], Any]:
    """(the prediction-log record, the label or None) of one BentoML row."""
    monitor = monitor_of(fields, resource)
    meta = fields.get("bento_meta")
    if isinstance(meta, dict) and isinstance(meta.get("schema"), dict):
        schemas.see(monitor, meta["schema"])
    schema = schemas.get(monitor)
    features: dict[str, Any] = {}
    record: dict[str, Any] = {"model": model_name(monitor)}
    label = None
    for name, value in fields.items():
        if name in _PRESERVED:
            continue
        found = schema.get(name)
        column: dict[str, Any] = found if isinstance(found, dict) else {}
        role = column.get("role", "feature")
        if column.get("type") == "categorical" and isinstance(value, int | float | bool):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if role == "prediction":
            record["prediction"] = value
        elif role == "target":
            label = value
        else:
            features[_FEATURE_CHARS.sub("_", name)[:128]] = value
    record["features"] = features
    record["prediction_id"] = f"{fields.get('request_id')}:{index}"
    if isinstance(fields.get("timestamp"), int | float):
        record["timestamp"] = fields["timestamp"]
    return record, label
