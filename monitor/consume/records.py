"""Messages of our own JSON prediction records: one record, ``{"predictions": [...]}``, or NDJSON.

A record without a ``prediction_id`` gets one derived from the message's broker id and its
position in the message, so a redelivered message is stored once, like a resent API batch.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from monitor.consume.source import Message
from monitor.errors import MalformedBody
from monitor.ingest.decode import decode_ndjson
from monitor.ingest.fields import MAX_ID_LENGTH


def derived_id(*parts: object) -> str:
    """A readable id when it fits the column's limit, else a hash of the same parts."""
    text = ":".join(str(p) for p in parts)
    return text if len(text) <= MAX_ID_LENGTH else hashlib.sha256(text.encode()).hexdigest()


def _records(value: bytes) -> list[Any]:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        if b"\n" in value.strip():
            return decode_ndjson(value)
        raise MalformedBody("message is not JSON") from None
    if isinstance(doc, dict) and "predictions" in doc:
        doc = doc["predictions"]
        if not isinstance(doc, list):
            raise MalformedBody("'predictions' must be a list of records")
    return doc if isinstance(doc, list) else [doc]


def decode_records(message: Message) -> list[Any]:
    """The prediction records a message carries; MalformedBody if it carries none we can read."""
    records = _records(message.value)
    if not records:
        raise MalformedBody("message holds no records")
    for index, record in enumerate(records):
        if isinstance(record, dict) and record.get("prediction_id") is None:
            record["prediction_id"] = derived_id(message.topic, message.id, index)
    return records
