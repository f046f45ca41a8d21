"""Read tabular files (CSV, JSON Lines, Parquet) in chunks of JSON-like records.

A flat column that is not a known prediction field is taken as a feature; JSON Lines records
may also nest features under ``features`` as the HTTP API does. A classifier's score per class
is a ``probabilities`` object (JSON Lines, a Parquet struct) or, flattened as pandas'
``json_normalize`` writes it, one ``probabilities.<class>`` column per class (CSV).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.errors import MalformedBody, UnsupportedMediaType
from monitor.ingest.decode import loads_json
from monitor.ingest.fields import KNOWN_FIELDS

Format = Literal["csv", "ndjson", "parquet"]
PROBABILITIES = "probabilities"
REFERENCE_FIELDS = frozenset({"prediction", "label", PROBABILITIES, "model", "model_version"})
_FLAT_PROBABILITY = f"{PROBABILITIES}."
_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_BY_MEDIA: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/octet-stream": "parquet",
}


def format_for_path(path: Path) -> Format:
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedMediaType(f"{path.name}: use a .csv, .jsonl/.ndjson or .parquet file")
    return fmt


def format_for_media(media: str) -> Format:
    fmt = _BY_MEDIA.get(media)
    if fmt is None:
        raise UnsupportedMediaType(
            f"content type {media or '(none)'!r} is not accepted for data sets; send text/csv, "
            "application/x-ndjson or application/vnd.apache.parquet"
        )
    return fmt


def _batches(source: BinaryIO, fmt: Format, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    if fmt == "parquet":
        for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_rows):
            yield batch.to_pylist()
    elif fmt == "csv":
        reader = pa_csv.open_csv(source, read_options=pa_csv.ReadOptions(block_size=1 << 22))
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                yield batch.slice(start, chunk_rows).to_pylist()
    else:
        chunk: list[dict[str, Any]] = []
        for lineno, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                chunk.append(loads_json(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"line {lineno} is not valid JSON: {exc}") from exc
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def read_records(
    source: BinaryIO, fmt: Format, chunk_rows: int = 10_000
) -> Iterator[list[dict[str, Any]]]:
    """Raw rows as dicts, chunk by chunk; malformed files raise MalformedBody."""
    try:
        yield from _batches(source, fmt, chunk_rows)
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise MalformedBody(f"cannot read the {fmt} data: {exc}") from exc


def read_bytes(
    body: bytes, fmt: Format, chunk_rows: int = 10_000
) -> Iterator[list[dict[str, Any]]]:
    return read_records(io.BytesIO(body), fmt, chunk_rows)


def as_prediction_record(row: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A flat file row as an API record: known fields stay, everything else is a feature."""
    if isinstance(row.get("features"), dict):
        return {**row, "model": model}
    record: dict[str, Any] = {"model": model}
    features: dict[str, Any] = {}
    flat = _flat_probabilities(row)
    for key, value in row.items():
        if key in KNOWN_FIELDS:
            record[key] = value
        elif flat is None or not key.startswith(_FLAT_PROBABILITY):
            features[key] = value
    if flat is not None:
        record[PROBABILITIES] = flat
    record["features"] = features
    if "timestamp" in record and hasattr(record["timestamp"], "isoformat"):
        record["timestamp"] = record["timestamp"].isoformat()
    return record


def _flat_probabilities(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """``probabilities.<class>`` columns as one object; None when the row has none."""
    if PROBABILITIES in row:
        return None
    found = {
        k[len(_FLAT_PROBABILITY) :]: v for k, v in row.items() if k.startswith(_FLAT_PROBABILITY)
    }
    return found or None


@dataclass(frozen=True)
class ReferenceFields:
    """One reference data-set row, split into what each column is."""

    features: dict[str, Any]
    prediction: Any
    label: Any
    probabilities: Any


def split_reference_row(row: Mapping[str, Any]) -> ReferenceFields:
    """The features, prediction, label and class scores of one reference data-set row."""
    flat = _flat_probabilities(row)
    probabilities = row.get(PROBABILITIES) if flat is None else flat
    if isinstance(row.get("features"), dict):
        features = dict(row["features"])
    else:
        features = {
            k: v
            for k, v in row.items()
            if k not in REFERENCE_FIELDS and not (flat and k.startswith(_FLAT_PROBABILITY))
        }
    return ReferenceFields(features, row.get("prediction"), row.get("label"), probabilities)
