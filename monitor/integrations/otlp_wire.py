"""OTLP/HTTP bodies: protobuf or JSON, optionally gzip, decoded with ``opentelemetry-proto``.

What the OTLP specification asks of a server (opentelemetry-proto ``docs/specification.md``):
``application/x-protobuf`` or ``application/json`` bodies, ``Content-Encoding: gzip``
accepted, the answer in the request's encoding, 400 for a body that cannot be decoded. Its JSON
mapping differs from protobuf's canonical one in one place we must handle: ``traceId``,
``spanId`` and ``parentSpanId`` are hex strings, not base64.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from monitor.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from monitor.ingest.decode import media_type

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_HEX_IDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})

M = TypeVar("M", bound=Message)


def encoding_of(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            f"content type {kind or '(none)'!r} is not OTLP; send {PROTOBUF} or {JSON}"
        )
    return kind


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its gzip encoding, refused (413) past ``limit`` bytes inflated."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return body
    if coding != "gzip":
        raise UnsupportedMediaType(f"content encoding {coding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"inflated body exceeds the limit of {limit} bytes")
    return out


def decode(body: bytes, encoding: str, message: type[M]) -> M:
    out = message()
    try:
        if encoding == PROTOBUF:
            out.ParseFromString(body)
        else:
            json_format.ParseDict(
                _hex_ids_to_base64(orjson.loads(body)), out, ignore_unknown_fields=True
            )
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, ValueError) as exc:
        what = "protobuf" if encoding == PROTOBUF else "OTLP JSON"
        raise MalformedBody(f"body is not a valid {what} {message.DESCRIPTOR.name}: {exc}") from exc
    return out


def encode(message: Message, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return bytes(message.SerializeToString())
    return orjson.dumps(json_format.MessageToDict(message))


def _hex_ids_to_base64(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: _b64(v) if k in _HEX_IDS and isinstance(v, str) else _hex_ids_to_base64(v)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_hex_ids_to_base64(v) for v in doc]
    return doc


def _b64(hex_id: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()
    except ValueError as exc:
        raise MalformedBody(f"{hex_id!r} is not a hex trace or span id") from exc


# -- attribute values -------------------------------------------------------------------------


def value(v: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain Python (kvlists as dicts, arrays as lists)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        assert isinstance(kv, KeyValue)
        out[kv.key] = value(kv.value)
    return out


def hex_id(raw: bytes) -> str:
    return binascii.hexlify(raw).decode()
