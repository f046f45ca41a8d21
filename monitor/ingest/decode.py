"""Turn request bodies into lists of JSON records, in bulk (orjson), naming what is malformed."""

from __future__ import annotations

import json
from typing import Any

import orjson

from monitor.errors import MalformedBody, PayloadTooLarge, Problem, UnsupportedMediaType

JSON = "application/json"
NDJSON = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _with_non_finite(text: bytes, surrogate: bool = False) -> Any:
    """``text`` parsed with NaN / Infinity / -Infinity as floats, if it holds any of them, or
    with lone surrogates (``"\\ud800"``) when orjson refused one (``surrogate``).

    Strict JSON has no such literals, but Python's ``json.dumps`` and many others write them for a
    missing or broken value. Read here, the record checks answer 422 naming the record and field
    ("must be a finite number", "must not contain a lone surrogate"), which says more than a 400
    about a character position.
    """
    seen: list[str] = ["surrogate"] if surrogate else []

    def constant(name: str) -> float:
        seen.append(name)
        return float(name)

    try:
        doc = json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError):
        return None
    return doc if seen else None


def loads_json(text: bytes) -> Any:
    """orjson's parse (depth limit 1024; errors are ``json.JSONDecodeError`` with a position),
    reading NaN / Infinity literals too."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        doc = _with_non_finite(text, surrogate="surrogate" in str(exc))
        if doc is None:
            raise
        return doc


def decode_json(body: bytes) -> Any:
    try:
        return loads_json(body)
    except orjson.JSONDecodeError as exc:
        raise malformed_json(exc) from exc


def malformed_json(exc: json.JSONDecodeError) -> MalformedBody:
    """The one answer to a body that is not JSON, naming where it stops being JSON."""
    return MalformedBody(
        f"body is not valid JSON: {exc}", [Problem(exc.msg, field="body", position=exc.pos)]
    )


def decode_ndjson(body: bytes) -> list[Any]:
    records: list[Any] = []
    problems: list[Problem] = []
    for index, line in enumerate(ln for ln in body.split(b"\n") if ln.strip()):
        try:
            records.append(loads_json(line))
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(f"not valid JSON: {exc}", index=index, position=exc.pos))
    if problems:
        raise MalformedBody(f"{len(problems)} NDJSON line(s) are not valid JSON", problems)
    return records


def decode_batch(
    body: bytes, content_type: str | None, key: str, max_records: int | None = None
) -> list[Any]:
    """A JSON body ``{key: [...]}`` (or a bare list) or NDJSON, as a list of records; more
    than ``max_records`` of them is a 413."""
    records = _decode_batch(body, content_type, key)
    if max_records is not None and len(records) > max_records:
        raise PayloadTooLarge(
            f"the batch has {len(records)} records; the limit is {max_records} "
            "(MONITOR_MAX_BATCH_RECORDS); nothing was stored",
            [Problem(f"has {len(records)} records; the limit is {max_records}", field=key)],
        )
    return records


def _decode_batch(body: bytes, content_type: str | None, key: str) -> list[Any]:
    kind = media_type(content_type)
    if kind in NDJSON:
        return decode_ndjson(body)
    if kind != JSON:
        raise UnsupportedMediaType(
            f"content type {kind or '(none)'!r} is not accepted; "
            f"send {JSON} or application/x-ndjson"
        )
    doc = decode_json(body)
    if isinstance(doc, dict):
        if key not in doc:
            raise MalformedBody(
                f"JSON body must have a {key!r} list", [Problem("missing", field=key)]
            )
        doc = doc[key]
    if not isinstance(doc, list):
        raise MalformedBody(
            f"{key!r} must be a list of records", [Problem("not a list", field=key)]
        )
    return doc
