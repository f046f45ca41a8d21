"""The rows ingest writes with COPY, as named types: field order is column order.

Each field is annotated with its PostgreSQL type, so the column list and the COPY types are
read off the type (``columns``, ``copy_types``) instead of being spelled out next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NamedTuple, get_type_hints

from monitor.storage.arrays import EncodedArray


@dataclass(frozen=True)
class Pg:
    """The PostgreSQL type COPY writes a field as."""

    type: str


# arrays are EncodedArray on the way to COPY; the slow path builds them as lists first
NumCell = EncodedArray | Sequence[float | None] | None
CatCell = EncodedArray | Sequence[str | None] | None


class PredictionRow(NamedTuple):
    """One row of ``predictions``."""

    model_id: Annotated[int, Pg("int4")]
    model_version: Annotated[str, Pg("text")]
    prediction_id: Annotated[str | None, Pg("text")]
    ts: Annotated[datetime, Pg("timestamptz")]
    num: Annotated[NumCell, Pg("float8[]")]
    cat: Annotated[CatCell, Pg("text[]")]
    prediction: Annotated[float | None, Pg("float8")]
    prediction_text: Annotated[str | None, Pg("text")]
    latency_ms: Annotated[float | None, Pg("float8")]
    status: Annotated[str, Pg("text")]
    variant: Annotated[str, Pg("text")]
    gpu_seconds: Annotated[float | None, Pg("float8")]
    tokens_in: Annotated[int | None, Pg("int4")]
    tokens_out: Annotated[int | None, Pg("int4")]
    probabilities: Annotated[dict[str, float] | None, Pg("jsonb")]
    extra: Annotated[dict[str, Any] | None, Pg("jsonb")]


class ReferenceRow(NamedTuple):
    """One row of ``reference_rows``, without the ``reference_id`` COPY puts in front."""

    num: Annotated[NumCell, Pg("float8[]")]
    cat: Annotated[CatCell, Pg("text[]")]
    prediction: Annotated[float | None, Pg("float8")]
    prediction_text: Annotated[str | None, Pg("text")]
    label: Annotated[float | None, Pg("float8")]
    label_text: Annotated[str | None, Pg("text")]
    probabilities: Annotated[dict[str, float] | None, Pg("jsonb")] = None


def columns(row_type: type[tuple[Any, ...]]) -> tuple[str, ...]:
    fields: tuple[str, ...] = getattr(row_type, "_fields")  # noqa: B009 - any NamedTuple
    return fields


def copy_types(row_type: type[tuple[Any, ...]]) -> tuple[str, ...]:
    hints = get_type_hints(row_type, include_extras=True)
    return tuple(_pg(hints[name]).type for name in columns(row_type))


def _pg(hint: Any) -> Pg:
    found = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Pg)]
    if len(found) != 1:
        raise TypeError(f"{hint!r} needs exactly one Pg(...) annotation")
    return found[0]


class LabelRow(NamedTuple):
    """One delayed label, upserted into ``labels`` by (model, prediction_id)."""

    prediction_id: str
    label: float | None
    label_text: str | None
    ts: datetime


PREDICTION_COLUMNS = columns(PredictionRow)
PREDICTION_TYPES = copy_types(PredictionRow)
REFERENCE_COLUMNS = columns(ReferenceRow)
REFERENCE_TYPES = copy_types(ReferenceRow)
