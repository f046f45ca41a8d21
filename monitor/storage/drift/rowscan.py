"""Raw prediction rows into rollup deltas: one read per row, numeric columns binned on the
profile's frozen edges, categorical ones counted by name.

A set of rows (``colscan.RowSet``) is read by one query: numeric values, and categorical values
as their 32-bit ``hashtext``, matched against the names the profile knows; a second query names
the values it does not know (new categories) and the unknown features, only when there are any.
Row sets are read on ``colscan.SCAN_WORKERS`` connections at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine

from monitor.storage.drift.bins import (
    CategoryRollup,
    ColumnRollup,
    Deltas,
    NumericRollup,
    add_columns,
    schema_rollup,
)
from monitor.storage.drift.colscan import (
    RowSet,
    category_counts,
    numeric_groups,
    run_parallel,
    text_hashes,
    unknown_feature_counts,
)
from monitor.storage.drift.profiles import ColumnProfile, Profile

FloatArray = npt.NDArray[np.float64]


def _row_columns(profile: Profile) -> list[ColumnProfile]:
    """The columns a scan reads per row: the numeric features first, in ``num`` order (so the
    stored array is sent as it is), then other numeric columns, then the categorical ones."""
    numeric = [c for c in profile.by_kind("numeric") if c.edges is not None]
    features = sorted(
        (c for c in numeric if c.spec.role == "feature"), key=lambda c: c.spec.position or 0
    )
    others = [c for c in numeric if c.spec.role != "feature"]
    return [*features, *others, *profile.by_kind("categorical"), *profile.of_role("schema")]


Totals = dict[tuple[str, datetime], int]


def count_hashes(codes: FloatArray, known: Mapping[int, str]) -> tuple[CategoryRollup, int]:
    """Counts of the categories named in ``known`` (hashtext -> name), and how many values
    had another hash (new categories: named by a second query)."""
    present = codes[~np.isnan(codes)].astype(np.int64)
    hashes, counts = np.unique(present, return_counts=True)
    named: dict[str, int] = {}
    unknown = 0
    for h, n in zip(hashes.tolist(), counts.tolist(), strict=True):
        name = known.get(h)
        if name is None:
            unknown += n
        else:
            named[name] = n
    return CategoryRollup(int(codes.size - present.size), named), unknown


def known_hashes(conn: Connection, columns: Sequence[ColumnProfile]) -> dict[int, dict[int, str]]:
    """Per categorical column, hashtext -> name of the categories its profile names."""
    names = [name for c in columns for name in c.categories]
    hashes = iter(text_hashes(conn, names).tolist())
    return {c.spec.col: {next(hashes): name for name in c.categories} for c in columns}


def _row_part(profile: Profile, rows: RowSet, conn: Connection) -> tuple[Deltas, Totals]:
    """Numeric columns binned and categorical ones counted, from one read of each row."""
    columns = _row_columns(profile)
    known = known_hashes(conn, [c for c in columns if not c.numeric and c.spec.role != "schema"])
    flagged: dict[tuple[str, datetime], int] = {}
    deltas: Deltas = {}
    totals: Totals = {}
    new_in: set[int] = set()
    for (version, bucket), matrix in numeric_groups(conn, rows, [c.spec for c in columns]):
        assert bucket is not None
        out = deltas.setdefault((version, bucket), {})
        totals[(version, bucket)] = matrix.shape[0]
        for j, column in enumerate(columns):
            col = column.spec.col
            if column.spec.role == "schema":
                flagged[(version, bucket)] = int(np.count_nonzero(matrix[:, j]))
            elif column.edges is not None and column.numeric:
                out[col] = NumericRollup.of(matrix[:, j], column.edges)
            else:
                out[col], unknown = count_hashes(matrix[:, j], known[col])
                if unknown:
                    new_in.add(col)
    if new_in:
        name_new_categories(conn, rows, [c for c in columns if c.spec.col in new_in], deltas)
    if flagged:
        names = unknown_feature_counts(conn, rows) if any(flagged.values()) else {}
        _add_unknown_features(profile, deltas, totals, names)
    return deltas, totals


def name_new_categories(
    conn: Connection,
    rows: RowSet,
    columns: Sequence[ColumnProfile],
    deltas: Mapping[Any, Mapping[int, ColumnRollup]],
) -> None:
    """Count, by name, the values of ``columns`` that the reference profile does not name."""
    unnamed = rows.naming_unknown({c.spec.col: (c.spec, c.categories) for c in columns})
    for key, per_col in category_counts(conn, unnamed, [c.spec for c in columns]).items():
        for c in columns:
            kept = set(c.categories)
            rollup = deltas[key][c.spec.col]
            assert isinstance(rollup, CategoryRollup)
            new = {k: v for k, v in per_col.get(c.spec.col, {}).items() if k and k not in kept}
            rollup.add(CategoryRollup(0, new))


def scan_each(engine: Engine, profile: Profile, row_sets: Sequence[RowSet]) -> list[Deltas]:
    """The rollups of each set of ``predictions`` rows, per (model version, hour bucket).

    One query per row set (plus one naming new categories or unknown features, when there are
    any), all at once on ``colscan.SCAN_WORKERS`` connections.
    """
    tasks = [partial(_row_part, profile, rows) for rows in row_sets]
    return [deltas for deltas, _ in run_parallel(engine, tasks)]


def scan(engine: Engine, profile: Profile, row_sets: Sequence[RowSet]) -> Deltas:
    """``scan_each``, summed."""
    total: Deltas = {}
    for deltas in scan_each(engine, profile, row_sets):
        merge(total, deltas)
    return total


def _add_unknown_features(
    profile: Profile,
    deltas: Deltas,
    totals: Mapping[tuple[str, datetime], int],
    unknown: Mapping[Any, Mapping[str | None, int]],
) -> None:
    schema_cols = profile.of_role("schema")
    if not schema_cols:
        return
    col = schema_cols[0].spec.col
    for key, total in totals.items():
        names = unknown.get(key, {})
        deltas.setdefault(key, {})[col] = schema_rollup(total, names.get(None, 0), names)


def merge(into: Deltas, more: Deltas) -> None:
    """``into += more``."""
    for key, columns in more.items():
        add_columns(into.setdefault(key, {}), columns)
