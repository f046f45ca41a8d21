"""The fast path for a batch's other fields, column by column (see ``ingest.columns``).

Each column is taken out of the records once and checked with set operations over its value
types and a few vectorised comparisons. Any column that is not plainly valid makes the whole
batch go through the record-by-record checker instead, which names each problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from monitor.ingest.names import label_value_problem

_NONE = type(None)
_TEXT = frozenset({str, _NONE})
_NUMBER = frozenset({int, float, _NONE})
_INTEGER = frozenset({int, _NONE})
_INT4_MAX = 2**31
_KNOWN_LABELS_MAX = 10_000

Column = list[Any]


class _Irregular(Exception):
    """This batch needs the record-by-record checker."""


def _column(records: Sequence[Mapping[str, Any]], key: str) -> Column:
    return [r.get(key) for r in records]


def _require(ok: bool) -> None:
    if not ok:
        raise _Irregular


def _labels(column: Column, default: str, known: set[str]) -> Column:
    _require(_TEXT.issuperset(map(type, column)))
    distinct = set(column)
    distinct.discard(None)
    fresh = distinct - known
    _require(not any(label_value_problem(v) for v in fresh))
    if len(known) < _KNOWN_LABELS_MAX:
        known.update(fresh)
    return [default if v is None else v for v in column] if None in column else column


def _non_negative(column: Column) -> Column:
    _require(_NUMBER.issuperset(map(type, column)))
    values = np.array([v for v in column if v is not None], dtype=np.float64)
    _require(bool(np.isfinite(values).all() and (values >= 0).all()))
    return column


def _counts(column: Column) -> Column:
    _require(_INTEGER.issuperset(map(type, column)))
    present = [v for v in column if v is not None]
    _require(not present or (min(present) >= 0 and max(present) < _INT4_MAX))
    return column


def _ids(column: Column, max_length: int) -> Column:
    _require(_TEXT.issuperset(map(type, column)) and "" not in column)
    _require(max(map(len, filter(None, column)), default=0) <= max_length)
    return column


def _timestamps(column: Column, now: datetime, oldest: datetime, newest: datetime) -> Column:
    _require(_TEXT.issuperset(map(type, column)))
    try:
        stamps = [now if v is None else datetime.fromisoformat(v) for v in column]
    except ValueError as exc:
        raise _Irregular from exc
    stamps = [ts if ts.tzinfo else ts.replace(tzinfo=UTC) for ts in stamps]
    _require(oldest <= min(stamps) and max(stamps) <= newest)
    return stamps


def _predictions(column: Column, max_length: int) -> tuple[Column, Column]:
    types = set(map(type, column))
    nothing: Column = [None] * len(column)
    if _NUMBER.issuperset(types):
        values = np.array([v for v in column if v is not None], dtype=np.float64)
        _require(bool(np.isfinite(values).all()))
        return column, nothing
    _require(_TEXT.issuperset(types))
    _require(max(map(len, filter(None, column)), default=0) <= max_length)
    return nothing, column


class FieldChecker:
    """Column-wise checks for one batch; ``rows`` returns None when it needs the slow path."""

    def __init__(
        self,
        known_fields: frozenset[str],
        id_length: int,
        max_length: int,
        now: datetime,
        oldest: datetime,
        newest: datetime,
    ) -> None:
        self.known_fields = known_fields
        self.id_length = id_length
        self.max_length = max_length
        self.now, self.oldest, self.newest = now, oldest, newest
        self.known_labels: set[str] = set()

    def rows(
        self, model_id: int, records: Sequence[Mapping[str, Any]], num: Column, cat: Column
    ) -> list[tuple[Any, ...]] | None:
        try:
            return self._rows(model_id, records, num, cat)
        except _Irregular:
            return None

    def _rows(
        self, model_id: int, records: Sequence[Mapping[str, Any]], num: Column, cat: Column
    ) -> list[tuple[Any, ...]]:
        def col(key: str) -> Column:
            return _column(records, key)

        prediction, prediction_text = _predictions(col("prediction"), self.max_length)
        extra = [
            {k: v for k, v in r.items() if k not in self.known_fields}
            if r.keys() - self.known_fields
            else None
            for r in records
        ]
        return list(
            zip(
                [model_id] * len(records),
                _labels(col("model_version"), "", self.known_labels),
                _ids(col("prediction_id"), self.id_length),
                _timestamps(col("timestamp"), self.now, self.oldest, self.newest),
                num,
                cat,
                prediction,
                prediction_text,
                _non_negative(col("latency_ms")),
                _labels(col("status"), "ok", self.known_labels),
                _labels(col("variant"), "production", self.known_labels),
                _non_negative(col("gpu_seconds")),
                _counts(col("tokens_in")),
                _counts(col("tokens_out")),
                extra,
                strict=True,
            )
        )
