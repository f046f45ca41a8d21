"""Build a reference set's drift profile from ``reference_rows``.

A reference of at most ``SAMPLE_ROWS`` rows is read once and profiled on edges from all its
values. A larger one is read twice: a sample of table blocks places the edges, then every row
is counted on them, in chunks of table blocks on ``colscan.SCAN_WORKERS`` connections, so memory
stays bounded by the chunk size (``docs/drift.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, text

from monitor.ingest.schema import FeatureSchema
from monitor.storage.drift.bins import CategoryRollup, NumericRollup
from monitor.storage.drift.colscan import (
    ColumnKind,
    ColumnSpec,
    RowSet,
    category_counts,
    numeric_groups,
    run_parallel,
)
from monitor.storage.drift.profiles import (
    ColumnProfile,
    Profile,
    categorical_profile,
    fine_edges,
    numeric_column,
    numeric_profile,
    signature,
)
from monitor.storage.drift.rowscan import count_hashes, known_hashes, name_new_categories

FloatArray = npt.NDArray[np.float64]

SAMPLE_ROWS = 100_000
"""Reference rows (a sample of table blocks) that place the fine and PSI edges of a larger
reference; every reference row is then counted on them."""
CHUNK_BLOCKS = 1024  # reference rows read per query: ~30k rows, ~6 MB


@dataclass(frozen=True)
class _Counts:
    """Rows of a reference set, and how many carry a numeric / text prediction and label."""

    rows: int
    prediction: tuple[int, int]
    label: tuple[int, int]

    @classmethod
    def read(cls, conn: Connection, reference_id: int) -> _Counts:
        rows, *values = conn.execute(
            text(
                "SELECT count(*), count(prediction), count(prediction_text), count(label), "
                "count(label_text) FROM reference_rows WHERE reference_id = :r"
            ),
            {"r": reference_id},
        ).one()
        return cls(int(rows), (values[0], values[1]), (values[2], values[3]))


def _value_kind(numbers_texts: tuple[int, int]) -> ColumnKind | None:
    numbers, texts = numbers_texts
    if not numbers and not texts:
        return None
    return "numeric" if numbers >= texts else "categorical"


def _kind(value: str | None) -> ColumnKind | None:
    if value == "numeric":
        return "numeric"
    if value == "categorical":
        return "categorical"
    return None


def column_specs(
    schema: FeatureSchema, counts: _Counts, prediction_kind: str | None
) -> list[ColumnSpec]:
    """Features in schema order, then prediction, label and the unknown-features column."""
    specs: list[ColumnSpec] = []
    for f in schema.features:
        index = schema.num_index if f.kind == "numeric" else schema.cat_index
        specs.append(ColumnSpec(len(specs), f.name, "feature", f.kind, index[f.name] + 1))
    kind = _kind(prediction_kind) or _value_kind(counts.prediction)
    if kind is not None:
        specs.append(ColumnSpec(len(specs), "prediction", "prediction", kind))
    label_kind = _value_kind(counts.label)
    if label_kind is not None:
        specs.append(ColumnSpec(len(specs), "label", "label", label_kind))
    specs.append(ColumnSpec(len(specs), "unknown_features", "schema", "categorical"))
    return specs


def _blocks(conn: Connection) -> int:
    return int(
        conn.execute(
            text("SELECT pg_relation_size('reference_rows') / current_setting('block_size')::int")
        ).scalar_one()
    )


def _chunks(reference_id: int, blocks: int) -> list[RowSet]:
    """The reference's rows in ranges of table blocks (TID range scans), so that no single
    query result holds the whole set."""
    return [
        RowSet.reference(reference_id, blocks=(first, first + CHUNK_BLOCKS))
        for first in range(0, blocks + 1, CHUNK_BLOCKS)
    ]


def _matrix(conn: Connection, rows: RowSet, specs: Sequence[ColumnSpec]) -> FloatArray:
    parts = [m for _, m in numeric_groups(conn, rows, specs)]
    return np.concatenate(parts) if parts else np.empty((0, len(specs)))


def reference_numbers(
    conn: Connection, reference_id: int, specs: Sequence[ColumnSpec]
) -> list[FloatArray]:
    """Every numeric column of a (small) reference as one array each, NaN = missing."""
    matrix = _matrix(conn, RowSet.reference(reference_id), specs)
    return [np.ascontiguousarray(matrix[:, j]) for j in range(len(specs))]


@dataclass
class _Chunk:
    """One chunk of reference rows: numeric columns binned, categorical ones counted."""

    rollups: list[NumericRollup]
    low: FloatArray
    high: FloatArray
    categories: dict[int, CategoryRollup]


def _read_chunk(
    rows: RowSet,
    numeric: Sequence[ColumnSpec],
    edges: Sequence[FloatArray],
    categorical: Sequence[ColumnProfile],
    conn: Connection,
) -> _Chunk:
    """Numeric values binned on ``edges``; categories counted by hash against the names in
    ``categorical`` (from the sample), the others named by a second query if there are any."""
    matrix = _matrix(conn, rows, [*numeric, *(c.spec for c in categorical)])
    known = known_hashes(conn, categorical)
    counted: dict[int, CategoryRollup] = {}
    unnamed = []
    for k, column in enumerate(categorical):
        counted[column.spec.col], unknown = count_hashes(
            matrix[:, len(numeric) + k], known[column.spec.col]
        )
        if unknown:
            unnamed.append(column)
    if unnamed:
        name_new_categories(conn, rows, unnamed, {("", None): counted})
    values = matrix[:, : len(numeric)]
    rollups = [NumericRollup.of(values[:, j], e) for j, e in enumerate(edges)]
    if values.shape[0] == 0:
        nothing = np.full(len(numeric), np.inf)
        return _Chunk(rollups, nothing, -nothing, counted)
    with np.errstate(all="ignore"):
        return _Chunk(
            rollups, np.fmin.reduce(values, axis=0), np.fmax.reduce(values, axis=0), counted
        )


def _placed(sample: FloatArray, psi_bins: int) -> tuple[FloatArray, FloatArray, int]:
    """(fine edges, PSI edges, distinct values) from a sample of one column."""
    ordered = np.sort(sample)
    present = ordered[: int(np.count_nonzero(~np.isnan(ordered)))]
    if present.size == 0:
        return np.empty(0), np.empty(0), 0
    edges, psi = fine_edges(present, psi_bins)
    return edges, psi, int(np.count_nonzero(present[1:] != present[:-1]) + 1)


def _sample(
    conn: Connection, reference_id: int, rows: int, numeric: Sequence[ColumnSpec]
) -> tuple[RowSet, FloatArray]:
    """About ``SAMPLE_ROWS`` rows from random table blocks (or random rows, if the sampled
    blocks missed the reference) and their numeric columns."""
    sampled = RowSet.reference(reference_id, sample_percent=min(100.0, 100.0 * SAMPLE_ROWS / rows))
    matrix = _matrix(conn, sampled, numeric)
    if matrix.shape[0] >= min(rows, SAMPLE_ROWS) // 10:
        return sampled, matrix
    sampled = RowSet.reference(reference_id, share=SAMPLE_ROWS / rows)
    return sampled, _matrix(conn, sampled, numeric)


def _sampled_profiles(
    engine: Engine,
    reference_id: int,
    specs: tuple[Sequence[ColumnSpec], Sequence[ColumnSpec]],
    rows: int,
    psi_bins: int,
) -> list[ColumnProfile]:
    """Edges and category names from a sample of about ``SAMPLE_ROWS`` rows; then every row,
    chunk by chunk on ``colscan.SCAN_WORKERS`` connections, counted on them."""
    numeric, categorical = specs
    with engine.connect() as conn:
        sampled, sample = _sample(conn, reference_id, rows, numeric)
        names = category_counts(conn, sampled, categorical).get(("", None), {})
        blocks = _blocks(conn)
    placed = [_placed(sample[:, j], psi_bins) for j in range(len(numeric))]
    edges = [p[0] for p in placed]
    provisional = [categorical_profile(s, names.get(s.col, {})) for s in categorical]
    chunks: list[_Chunk] = run_parallel(
        engine,
        [
            partial(_read_chunk, rows, numeric, edges, provisional)
            for rows in _chunks(reference_id, blocks)
        ],
    )
    out = []
    for j, spec in enumerate(numeric):
        total = NumericRollup.empty(edges[j].size + 1)
        for chunk in chunks:
            total.add(chunk.rollups[j])
        extremes = (float(min(c.low[j] for c in chunks)), float(max(c.high[j] for c in chunks)))
        out.append(numeric_column(spec, edges[j], placed[j][1], total, extremes, placed[j][2]))
    for spec in categorical:
        merged = CategoryRollup(0)
        for chunk in chunks:
            merged.add(chunk.categories[spec.col])
        counts: dict[str | None, int] = dict(merged.counts.items())
        counts[None] = merged.n_missing
        out.append(categorical_profile(spec, counts, merged.n_other))
    return out


def build_profile(
    engine: Engine,
    reference_id: int,
    model_id: int,
    schema: FeatureSchema,
    prediction_kind: str | None,
    psi_bins: int,
) -> Profile:
    """Compute the profile of a reference set (not stored; see ``store_profile``).

    A reference of at most ``SAMPLE_ROWS`` rows is read once and profiled on edges from all its
    values. A larger one is read twice: a sample of table blocks places the edges, then every
    row is counted on them in chunks, so memory stays bounded by the chunk size.
    """
    with engine.connect() as conn:
        counts = _Counts.read(conn, reference_id)
    specs = column_specs(schema, counts, prediction_kind)
    rows = counts.rows
    numeric = [s for s in specs if s.kind == "numeric"]
    categorical = [s for s in specs if s.kind == "categorical" and s.role != "schema"]
    columns: dict[int, ColumnProfile] = {}
    if rows > SAMPLE_ROWS:
        profiled = _sampled_profiles(engine, reference_id, (numeric, categorical), rows, psi_bins)
        columns |= {c.spec.col: c for c in profiled}
    else:
        everything = RowSet.reference(reference_id)
        tasks: list[Callable[[Connection], Any]] = [
            partial(_matrix, rows=everything, specs=numeric),
            partial(category_counts, rows=everything, specs=categorical),
        ]
        matrix, by_group = run_parallel(engine, tasks)
        named = by_group.get(("", None), {})
        for j, spec in enumerate(numeric):
            columns[spec.col] = numeric_profile(spec, matrix[:, j], psi_bins)
        for spec in categorical:
            columns[spec.col] = categorical_profile(spec, named.get(spec.col, {}))
    for spec in specs:
        if spec.role == "schema":
            columns[spec.col] = ColumnProfile(spec, 0, rows, 0)
    return Profile(
        reference_id, model_id, rows, signature(psi_bins), tuple(columns[s.col] for s in specs)
    )
