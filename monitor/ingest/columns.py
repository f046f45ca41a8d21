"""The fast path for features: check and encode a whole batch column by column.

Most batches are regular: every record has only known features, numbers where the schema says
numeric and strings where it says categorical. For those, each feature becomes one numpy column
and each row's ``float8[]``/``text[]`` value is encoded in bulk (``storage.arrays``). Anything
irregular (unknown features, a wrong type, infinities, long strings, a NUL) returns None and the
batch goes through the record-by-record checker, which names every problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitor.ingest.schema import FeatureSchema
from monitor.ingest.text import all_storable
from monitor.storage.arrays import (
    EncodedArray,
    encode_float8_rows,
    encode_text_row,
    encode_text_rows,
)

_NUMERIC_TYPES = frozenset({int, float, type(None)})
_TEXT_TYPES = frozenset({str, type(None)})

Cells = tuple[list[EncodedArray | None], list[EncodedArray | None]]


def _numeric(features: Sequence[Mapping[str, Any]], names: Sequence[str]) -> np.ndarray | None:
    columns = []
    missing = 0
    for name in names:
        column = [f.get(name) for f in features]
        if not _NUMERIC_TYPES.issuperset(map(type, column)):
            return None
        missing += column.count(None)
        columns.append(column)
    matrix = np.array(columns, dtype=np.float64).T  # None -> NaN, written as NULL
    if np.isinf(matrix).any() or int(np.isnan(matrix).sum()) != missing:  # a NaN sent as NaN
        return None
    return np.ascontiguousarray(matrix)


def _categorical(
    features: Sequence[Mapping[str, Any]], names: Sequence[str], max_length: int
) -> list[list[str | None]] | None:
    columns = []
    for name in names:
        column = [f.get(name) for f in features]
        if not _TEXT_TYPES.issuperset(map(type, column)):
            return None
        if max(map(len, filter(None, column)), default=0) > max_length:
            return None
        if not all_storable(column):
            return None
        columns.append(column)
    return columns


def encode_regular(
    features: Sequence[Mapping[str, Any]], schema: FeatureSchema, max_length: int
) -> Cells | None:
    """Encoded (num, cat) cells per record, or None when the batch needs the slow path."""
    known = schema.names
    if any(not f.keys() <= known for f in features):
        return None
    rows = len(features)
    num: list[EncodedArray | None] = [None] * rows
    cat: list[EncodedArray | None] = [None] * rows
    if schema.num_index:
        matrix = _numeric(features, list(schema.num_index))
        if matrix is None:
            return None
        num = list(encode_float8_rows(matrix))
    if schema.cat_index:
        columns = _categorical(features, list(schema.cat_index), max_length)
        if columns is None:
            return None
        cat = list(encode_text_rows(zip(*columns, strict=True)))
    return num, cat


def encode_lists(
    num: Sequence[list[float | None] | None], cat: Sequence[list[str | None] | None]
) -> Cells:
    """Encode cells the slow path built as lists (same layout as ``encode_regular``)."""
    num_out: list[EncodedArray | None] = [None] * len(num)
    present = [i for i, v in enumerate(num) if v]
    if present:
        width = max(len(num[i] or ()) for i in present)
        matrix = np.full((len(present), width), np.nan)
        for row, i in enumerate(present):
            values = num[i] or []
            matrix[row, : len(values)] = np.array(values, dtype=np.float64)
        for row, encoded in zip(present, encode_float8_rows(matrix), strict=True):
            num_out[row] = encoded
    cat_out: list[EncodedArray | None] = [encode_text_row(v) if v else None for v in cat]
    return num_out, cat_out
