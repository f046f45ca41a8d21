"""CloudEvents over HTTP: binary, structured and batch mode, spec 1.0 and 0.3.

KServe's payload logger sends binary mode (cloudevents sdk-go: ``ce-*`` headers, the logged body
as the request body); MLServer/Seldon send the same headers with ``ce-specversion: 0.3``.
Structured mode (``application/cloudevents+json``) puts the attributes and ``data`` (or
``data_base64``) in one JSON object; batch mode (``application/cloudevents-batch+json``) is a
JSON list of them. Each event's ``data`` is returned parsed, as JSON.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

from monitor.errors import MalformedBody, Problem, UnsupportedMediaType
from monitor.ingest.decode import loads_json, media_type
from monitor.ingest.text import json_problem

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSIONS = frozenset({"1.0", "0.3"})
REQUIRED = ("id", "source", "type", "specversion")
MAX_ID_LENGTH = 200
_CONTEXT = frozenset({*REQUIRED, "time", "datacontenttype", "dataschema", "subject"})


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    specversion: str
    time: datetime | None
    extensions: Mapping[str, str]
    data: Any
    binary: bool = True

    def attribute_name(self, name: str) -> str:
        """How the sender spelled attribute ``name``: a ``ce-`` header or a JSON member."""
        return f"ce-{name}" if self.binary else name

    def extension(self, name: str) -> str | None:
        return self.extensions.get(name)


def _bad(field: str, problem: str, *, header: bool) -> MalformedBody:
    where = f"ce-{field}" if header else field
    what = "header" if header else "attribute"
    return MalformedBody(f"CloudEvents {what} {where} {problem}", [Problem(problem, field=where)])


def _event(attrs: Mapping[str, Any], data: Any, *, header: bool, index: int | None) -> CloudEvent:
    def bad(field: str, problem: str) -> MalformedBody:
        err = _bad(field, problem, header=header)
        if index is not None:
            err.details = [Problem(p.problem, index=index, field=p.field) for p in err.details]
        return err

    for name in REQUIRED:
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise bad(name, "is required")
    unstorable = json_problem(attrs)  # ids become keys and prediction ids (PostgreSQL text)
    if unstorable:
        raise bad(*unstorable)
    if attrs["specversion"] not in SPEC_VERSIONS:
        raise bad("specversion", f"must be one of {', '.join(sorted(SPEC_VERSIONS))}")
    if len(attrs["id"]) > MAX_ID_LENGTH:
        raise bad("id", f"is longer than {MAX_ID_LENGTH} characters")
    time = None
    if attrs.get("time") is not None:
        try:
            time = datetime.fromisoformat(str(attrs["time"]))
        except ValueError:
            raise bad("time", "must be an RFC 3339 timestamp") from None
        time = time if time.tzinfo else time.replace(tzinfo=UTC)
    extensions = {k: str(v) for k, v in attrs.items() if k not in _CONTEXT and v is not None}
    return CloudEvent(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        specversion=attrs["specversion"],
        time=time,
        extensions=extensions,
        data=data,
        binary=header,
    )


def _json(body: bytes, what: str) -> Any:
    try:
        return loads_json(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(
            f"{what} is not valid JSON: {exc}", [Problem(exc.msg, field="body", position=exc.pos)]
        ) from exc


def from_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Binary mode: attributes in ``ce-*`` headers (percent-encoded), the body is the data."""
    attrs = {k.lower()[3:]: unquote(v) for k, v in headers.items() if k.lower().startswith("ce-")}
    kind = media_type(headers.get("content-type"))
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"event data of type {kind!r} cannot be read; the logger must send JSON bodies"
        )
    data = _json(body, "event data") if body.strip() else None
    return _event(attrs, data, header=True, index=None)


def _structured(doc: Any, index: int | None) -> CloudEvent:
    if not isinstance(doc, dict):
        raise MalformedBody(
            "a structured CloudEvent must be a JSON object",
            [Problem("must be a JSON object", index=index)],
        )
    data = doc.get("data")
    if "data_base64" in doc:
        try:
            data = _json(base64.b64decode(doc["data_base64"], validate=True), "data_base64")
        except (binascii.Error, TypeError, ValueError) as exc:
            if isinstance(exc, MalformedBody):
                raise
            raise MalformedBody(
                "data_base64 is not base64",
                [Problem("not base64", index=index, field="data_base64")],
            ) from exc
    elif isinstance(data, str) and doc.get("datacontentencoding") == "base64":  # spec 0.3
        data = _json(base64.b64decode(data), "data")
    attrs = {k: v for k, v in doc.items() if k not in ("data", "data_base64")}
    return _event(attrs, data, header=False, index=index)


def decode(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The events of one HTTP request, in any of the three modes."""
    kind = media_type(headers.get("content-type"))
    if kind == STRUCTURED:
        return [_structured(_json(body, "body"), None)]
    if kind == BATCH:
        docs = _json(body, "body")
        if not isinstance(docs, list):
            raise MalformedBody("a CloudEvents batch must be a JSON list of events")
        return [_structured(doc, i) for i, doc in enumerate(docs)]
    return [from_binary(headers, body)]
