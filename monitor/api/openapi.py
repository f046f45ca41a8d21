"""Make ``/openapi.json`` say what the service really answers.

FastAPI documents the success answer and a 422 in its own error shape. The service answers every
error in the SPEC's shape, 503 while the database is away, and 400/401/404/409/413/415 where the
routes give them, so the document is completed here from one table (a new route must be added
to it: ``tests/contract/test_document.py`` checks that every operation is), and the fuzzing
contract test checks the answers against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from monitor.config import Settings
from monitor.ingest.names import FEATURE_NAME, LABEL_VALUE, MODEL_NAME
from monitor.ingest.rules import MAX_CLASS_LENGTH, MAX_CLASSES


class ErrorDetail(BaseModel):
    index: int | None = Field(default=None, description="the record, in a batch")
    field: str | None = Field(default=None, description="e.g. features.amount, or body")
    position: int | None = Field(default=None, description="character offset, in malformed JSON")
    problem: str


class ErrorInfo(BaseModel):
    code: str = Field(description="validation_failed, malformed_body, not_found, ...")
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorInfo


class NotReady(BaseModel):
    status: str = Field(description="unavailable or migrations pending")
    database: str | None = Field(default=None, description="unreachable: no host, port or text")


_WHY = {
    400: "malformed body (not JSON / NDJSON / CSV / Parquet), with the position",
    401: "missing or unknown bearer token",
    404: "unknown model, event or window",
    409: "conflicts with what is stored (a schema change that drops or retypes a feature, ...)",
    413: "body over MONITOR_MAX_BODY_BYTES",
    415: "content type not accepted",
    422: "well-formed but invalid: names every bad record and field",
    429: "too many requests in flight; retry after Retry-After seconds",
    503: "the database is unreachable; retry after Retry-After seconds",
}

_BODY = {400, 413, 415}
_UNLISTED = {422}  # a route missing from ERRORS (tests/contract/test_document.py says so)
# (method, path): the error statuses the route gives, besides 503 (every route but /healthz)
ERRORS: dict[tuple[str, str], set[int]] = {
    ("get", "/healthz"): set(),
    ("get", "/readyz"): set(),
    ("get", "/metrics"): set(),
    ("post", "/v1/predictions"): {*_BODY, 401, 422},
    ("post", "/v1/labels"): {*_BODY, 401, 404, 422},
    ("post", "/v1/integrations/kserve"): {*_BODY, 401, 404, 422},
    ("put", "/v1/models/{model}"): {*_BODY, 401, 409, 422},
    ("get", "/v1/models"): set(),
    ("get", "/v1/models/{model}"): {404, 422},
    ("post", "/v1/models/{model}/reference"): {*_BODY, 401, 404, 409, 422},
    ("post", "/v1/events"): {*_BODY, 401, 422},
    ("post", "/v1/jobs/run"): {401, 404, 422},
    ("post", "/v1/alertmanager"): {*_BODY, 401, 404, 422},
    ("get", "/v1/webhooks"): {422},
    ("post", "/v1/webhooks/{event_id}/retry"): {401, 404, 409, 422},
    ("get", "/v1/models/{model}/drift"): {404, 422},
    ("get", "/v1/models/{model}/report"): {404, 422},
    ("post", "/otlp/v1/traces"): {*_BODY, 401, 422, 429},
    ("post", "/otlp/v1/logs"): {*_BODY, 401, 422, 429},
    ("post", "/otlp/v1/metrics"): {*_BODY, 401, 422, 429},
}
_ALSO_SUCCEEDS = {("put", "/v1/models/{model}"): {201: "the model was created"}}
# reads that need a token when MONITOR_READ_TOKENS_REQUIRED is set
READS = {
    ("get", "/v1/models"),
    ("get", "/v1/models/{model}"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/models/{model}/drift"),
    ("get", "/v1/models/{model}/report"),
}
_NO_DATABASE = {("get", "/healthz")}
_TIMESTAMP = {"type": "string", "format": "date-time"}
# ingest also reads epoch seconds, and no timestamp (null) as "received now"
_INGEST_TIMESTAMP = {"type": ["string", "number", "null"], "format": "date-time"}
_LABELS = {
    "type": "object",
    "required": ["labels"],
    "properties": {
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["prediction_id", "model", "label"],
                "properties": {
                    "prediction_id": {"type": "string"},
                    "model": {"type": "string", "pattern": MODEL_NAME.pattern},
                    "label": {"type": ["number", "string", "boolean"]},
                    "timestamp": _INGEST_TIMESTAMP,
                },
            },
        }
    },
}
_AT_LEAST_ZERO = {"type": "number", "minimum": 0}
_LABEL = {"type": "string", "pattern": LABEL_VALUE.pattern}
_RECORD = {
    "type": "object",
    "required": ["model", "features"],
    "properties": {
        "model": {"type": "string", "pattern": MODEL_NAME.pattern},
        "features": {
            "type": "object",
            "propertyNames": {"pattern": FEATURE_NAME.pattern},
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
        },
        "prediction_id": {"type": "string"},
        "model_version": _LABEL,
        "timestamp": _INGEST_TIMESTAMP,
        "prediction": {"type": ["number", "string", "boolean", "null"]},
        "latency_ms": _AT_LEAST_ZERO,
        "status": _LABEL,
        "variant": _LABEL,
        "gpu_seconds": _AT_LEAST_ZERO,
        "tokens_in": {"type": "integer", "minimum": 0},
        "tokens_out": {"type": "integer", "minimum": 0},
        "probabilities": {
            "type": ["object", "null"],
            "maxProperties": MAX_CLASSES,
            "propertyNames": {"minLength": 1, "maxLength": MAX_CLASS_LENGTH},
            "additionalProperties": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        },
    },
}
_PREDICTIONS = {
    "type": "object",
    "required": ["predictions"],
    "properties": {"predictions": {"type": "array", "items": _RECORD}},
}
_WINDOW_REF = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {"from": _TIMESTAMP, "to": _TIMESTAMP},
    "additionalProperties": False,
}
_TEXT = {"schema": {"type": "string"}}
# routes that read their body themselves (FastAPI cannot see it): documented here
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/predictions"): {
        "required": True,
        "content": {"application/json": {"schema": _PREDICTIONS}, "application/x-ndjson": _TEXT},
    },
    ("post", "/v1/labels"): {
        "required": True,
        "content": {"application/json": {"schema": _LABELS}, "application/x-ndjson": _TEXT},
    },
    ("post", "/v1/models/{model}/reference"): {
        "required": True,
        "description": "a data set (CSV, NDJSON, Parquet) or a production window to freeze",
        "content": {
            "application/json": {"schema": _WINDOW_REF},
            "text/csv": _TEXT,
            "application/x-ndjson": _TEXT,
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    ("post", "/v1/integrations/kserve"): {
        "required": True,
        "description": "a CloudEvent: binary (ce-* headers, JSON data), structured or batch",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/cloudevents+json": {"schema": {"type": "object"}},
            "application/cloudevents-batch+json": {
                "schema": {"type": "array", "items": {"type": "object"}}
            },
        },
    },
}


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _WHY[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    if status == 503:
        answer["headers"] = {
            "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
        }
    return answer


def _schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _complete(operation: dict[str, Any], key: tuple[str, str], settings: Settings) -> None:
    statuses = set(ERRORS.get(key, _UNLISTED))
    if key not in _NO_DATABASE:
        statuses.add(503)
    if key in READS and settings.read_tokens_required:
        statuses.add(401)
    if 401 in statuses:
        operation["security"] = [{"bearer": []}]
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    if "422" in responses and 422 not in statuses:
        del responses["422"]
    if key in BODIES:
        operation["requestBody"] = BODIES[key]
    for status, why in _ALSO_SUCCEEDS.get(key, {}).items():
        responses[str(status)] = {**responses.get("200", {}), "description": why}
    if key == ("get", "/readyz"):
        responses["503"] = {
            "description": "not ready: the database is unreachable or migrations are pending",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotReady"}}},
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        }


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(_schemas((ErrorBody, NotReady)))
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "MONITOR_API_TOKENS or `monitor tokens create`; writes need one "
            "once any token exists",
        }
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _complete(operation, (method, path), settings)
    return doc


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(document: Mapping[str, Any], path: str) -> list[str]:
    """The methods the document declares for ``path`` (every route that matches it)."""
    methods: set[str] = set()
    for template, operations in document.get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
