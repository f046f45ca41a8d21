"""PostgreSQL binary array encoding, vectorised, for the COPY hot path.

psycopg's own array dumper walks lists in Python; a 1,000-row batch with 20 features spends
most of its COPY time there. Here a whole batch of ``float8[]`` values is packed with one numpy
call, and ``text[]`` values with a few struct packs a row. ``EncodedArray`` carries the bytes
through ``write_row`` untouched (see ``register_encoded_arrays``).

Binary array layout: ndim, has-null flag, element oid, then per dimension (size, lower bound),
then per element a 4-byte length (-1 for NULL) and the element's binary value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from psycopg.abc import AdaptContext
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

FLOAT8_OID = 701
TEXT_OID = 25
FLOAT8_ARRAY_OID = 1022
TEXT_ARRAY_OID = 1009

_HEADER = struct.Struct(">iiIii")
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
_CELL = np.dtype([("len", ">i4"), ("val", ">f8")])


class EncodedArray(bytes):
    """An array value already in PostgreSQL's binary format."""


class EncodedTextArray(EncodedArray):
    """A ``text[]`` value in binary format; usable as a query parameter too."""


def _header(oid: int, size: int, has_null: bool) -> bytes:
    return _HEADER.pack(1, int(has_null), oid, size, 1)


def encode_float8_rows(matrix: np.ndarray) -> list[EncodedArray]:
    """One ``float8[]`` per row of ``matrix``; NaN cells become NULL elements."""
    rows, width = matrix.shape
    cells = np.empty((rows, width), dtype=_CELL)
    cells["len"] = 8
    cells["val"] = matrix
    raw = cells.tobytes()
    stride = width * _CELL.itemsize
    header = _header(FLOAT8_OID, width, False)
    out = [EncodedArray(header + raw[i * stride : (i + 1) * stride]) for i in range(rows)]
    for i in np.flatnonzero(np.isnan(matrix).any(axis=1)):
        out[i] = _float8_with_nulls(matrix[i])
    return out


def _float8_with_nulls(values: np.ndarray) -> EncodedArray:
    parts = [_header(FLOAT8_OID, len(values), True)]
    for v in values.tolist():
        parts.append(_NULL if v != v else struct.pack(">id", 8, v))
    return EncodedArray(b"".join(parts))


def encode_text_row(values: Sequence[str | None]) -> EncodedTextArray:
    """One ``text[]`` value."""
    parts = [_header(TEXT_OID, len(values), None in values)]
    for v in values:
        if v is None:
            parts.append(_NULL)
        else:
            data = v.encode()
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
    return EncodedTextArray(b"".join(parts))


class _TextCells(dict[str | None, bytes]):
    """Each distinct value's element bytes (length + UTF-8), encoded on first use."""

    def __missing__(self, value: str | None) -> bytes:
        if value is None:
            return _NULL
        data = value.encode()
        cell = self[value] = _LENGTH.pack(len(data)) + data
        return cell


def encode_text_rows(rows: Iterable[Sequence[str | None]]) -> list[EncodedTextArray]:
    """Many ``text[]`` values; categorical values repeat, so each is encoded once."""
    cells = _TextCells()
    headers: dict[tuple[int, bool], bytes] = {}
    out: list[EncodedTextArray] = []
    for values in rows:
        shape = (len(values), None in values)
        header = headers.get(shape) or headers.setdefault(shape, _header(TEXT_OID, *shape))
        out.append(EncodedTextArray(header + b"".join(map(cells.__getitem__, values))))
    return out


class _PassThroughArrayDumper(Dumper):
    """Binary array dumper that forwards EncodedArray bytes as they are."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer | None:
        if not isinstance(obj, EncodedArray):
            raise TypeError(f"expected EncodedArray, got {type(obj).__name__}")
        return obj


class _Float8ArrayDumper(_PassThroughArrayDumper):
    oid = FLOAT8_ARRAY_OID
    format = Format.BINARY


class _TextArrayDumper(_PassThroughArrayDumper):
    oid = TEXT_ARRAY_OID
    format = Format.BINARY


def register_encoded_arrays(context: AdaptContext) -> None:
    """Make COPY columns typed ``float8[]``/``text[]`` (via set_types) take EncodedArray.

    Register on a cursor, not a connection: other statements keep psycopg's list dumpers.
    """
    for dumper in (_Float8ArrayDumper, _TextArrayDumper):
        context.adapters.register_dumper(None, dumper)
    context.adapters.register_dumper(EncodedTextArray, _TextArrayDumper)
