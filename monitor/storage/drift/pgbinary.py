"""numpy <-> PostgreSQL binary arrays, without a Python object per element.

The drift job moves millions of numbers between PostgreSQL and numpy. psycopg turns an array
into a list of Python floats; here a whole ``float8[]``/``int8[]``/``int4[]`` value, or a
``string_agg`` of many ``array_send`` rows, becomes one ``numpy.frombuffer`` call.

Binary array layout: ndim, has-null flag, element oid, then per dimension (size, lower bound),
then per element a 4-byte length (-1 for NULL) and the value, big-endian.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt
from psycopg.abc import AdaptContext
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format

FLOAT8_OID, INT8_OID, INT4_OID = 701, 20, 23
FLOAT8_ARRAY_OID, INT8_ARRAY_OID, INT4_ARRAY_OID = 1022, 1016, 1007

_HEADER = struct.Struct(">iiIii")
_ELEMENT = {FLOAT8_OID: ">f8", INT8_OID: ">i8", INT4_OID: ">i4"}
_NATIVE = {FLOAT8_OID: np.float64, INT8_OID: np.int64, INT4_OID: np.int32}
ROW_HEADER_BYTES = _HEADER.size  # one 1-D array_send value: header, then its cells


class ArrayFormatError(ValueError):
    """Bytes that are not the binary array this module expected (a bug, not bad user input)."""


def _cells(oid: int) -> np.dtype[Any]:
    return np.dtype([("len", ">i4"), ("val", _ELEMENT[oid])])


def decode_array(data: Buffer, oid: int) -> npt.NDArray[Any]:
    """One 1-D binary array value without NULL elements as a native-endian numpy array."""
    view = memoryview(data)
    ndim, _flags, elem = struct.unpack_from(">iiI", view)
    if ndim == 0:
        return np.empty(0, dtype=_NATIVE[oid])
    if ndim != 1 or elem != oid:
        raise ArrayFormatError(f"expected a 1-D array of oid {oid}, got ndim={ndim} oid={elem}")
    cells = np.frombuffer(view[ROW_HEADER_BYTES:], dtype=_cells(oid))
    if (cells["len"] < 0).any():
        raise ArrayFormatError("array has NULL elements")
    return cells["val"].astype(_NATIVE[oid])


def decode_rows(data: Buffer, width: int) -> npt.NDArray[np.float64]:
    """Concatenated ``array_send`` values of 1-D ``float8[width]`` arrays, no NULL elements,
    as an (n, width) matrix."""
    row = np.dtype([("head", ">i4", (5,)), ("cells", _cells(FLOAT8_OID), (width,))])
    view = memoryview(data)
    if len(view) % row.itemsize:
        raise ArrayFormatError(f"{len(view)} bytes is not a whole number of {width}-wide rows")
    rows = np.frombuffer(view, dtype=row)
    if rows.size and (rows["head"][:, 3] != width).any():
        raise ArrayFormatError("rows differ in width")
    return rows["cells"]["val"].astype(np.float64)


def encode_array(values: npt.ArrayLike, oid: int) -> bytes:
    array = np.asarray(values, dtype=_NATIVE[oid]).ravel()
    if array.size == 0:
        return struct.pack(">iiI", 0, 0, oid)
    cells = np.empty(array.size, dtype=_cells(oid))
    cells["len"] = np.dtype(_ELEMENT[oid]).itemsize
    cells["val"] = array
    return _HEADER.pack(1, 0, oid, array.size, 1) + cells.tobytes()


class Float8Array(bytes):
    """A ``float8[]`` query parameter already in binary form (see ``float8_array``)."""


class Int8Array(bytes):
    """An ``int8[]`` query parameter already in binary form."""


class Int4Array(bytes):
    """An ``int4[]`` query parameter already in binary form."""


def float8_array(values: npt.ArrayLike) -> Float8Array:
    return Float8Array(encode_array(values, FLOAT8_OID))


def int8_array(values: npt.ArrayLike) -> Int8Array:
    return Int8Array(encode_array(values, INT8_OID))


def int4_array(values: npt.ArrayLike) -> Int4Array:
    return Int4Array(encode_array(values, INT4_OID))


class _PassThrough(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer | None:
        return bytes(obj)


class _Float8ArrayDumper(_PassThrough):
    oid = FLOAT8_ARRAY_OID


class _Int8ArrayDumper(_PassThrough):
    oid = INT8_ARRAY_OID


class _Int4ArrayDumper(_PassThrough):
    oid = INT4_ARRAY_OID


class _NumpyLoader(Loader):
    format = Format.BINARY
    element_oid = FLOAT8_OID

    def load(self, data: Buffer) -> npt.NDArray[Any]:
        return decode_array(data, self.element_oid)


class _Float8ArrayLoader(_NumpyLoader):
    element_oid = FLOAT8_OID


class _Int8ArrayLoader(_NumpyLoader):
    element_oid = INT8_OID


class _Int4ArrayLoader(_NumpyLoader):
    element_oid = INT4_OID


class _BytesLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def register_numpy_arrays(context: AdaptContext) -> None:
    """On a cursor (use it with ``binary=True``): numeric arrays load as numpy arrays, the
    ``*Array`` wrappers dump as they are, and ``bytea`` loads as bytes."""
    adapters = context.adapters
    adapters.register_dumper(Float8Array, _Float8ArrayDumper)
    adapters.register_dumper(Int8Array, _Int8ArrayDumper)
    adapters.register_dumper(Int4Array, _Int4ArrayDumper)
    adapters.register_loader(FLOAT8_ARRAY_OID, _Float8ArrayLoader)
    adapters.register_loader(INT8_ARRAY_OID, _Int8ArrayLoader)
    adapters.register_loader(INT4_ARRAY_OID, _Int4ArrayLoader)
    adapters.register_loader("bytea", _BytesLoader)
