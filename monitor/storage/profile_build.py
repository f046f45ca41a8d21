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
from monitor.storage.bins import NumericRollup
from monitor.storage.colscan import (
    ColumnKind,
    ColumnSpec,
    RowSet,
    category_counts,
    numeric_groups,
    run_parallel,
)
from monitor.storage.profiles import (
    ColumnProfile,
    Profile,
    categorical_profile,
    fine_edges,
    numeric_column,
    numeric_profile,
    signature,
)

FloatArray = npt.NDArray[np.float64]

SAMPLE_ROWS = 100_000
"""Reference rows (a sample of table blocks) that place the fine and PSI edges of a larger
reference; every reference row is then counted on them."""
CHUNK_BLOCKS = 1024  # reference rows read per query: ~30k rows, ~6 MB


def _value_kind(conn: Connection, reference_id: int, role: str) -> ColumnKind | None:
    numbers, texts = conn.execute(
        text(
            f"SELECT count({role}), count({role}_text) FROM reference_rows WHERE reference_id = :r"
        ),
        {"r": reference_id},
    ).one()
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
    conn: Connection, schema: FeatureSchema, reference_id: int, prediction_kind: str | None
) -> list[ColumnSpec]:
    """Features in schema order, then prediction, label and the unknown-features column."""
    specs: list[ColumnSpec] = []
    for f in schema.features:
        index = schema.num_index if f.kind == "numeric" else schema.cat_index
        specs.append(ColumnSpec(len(specs), f.name, "feature", f.kind, index[f.name] + 1))
    kind = _kind(prediction_kind) or _value_kind(conn, reference_id, "prediction")
    if kind is not None:
        specs.append(ColumnSpec(len(specs), "prediction", "prediction", kind))
    label_kind = _value_kind(conn, reference_id, "label")
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
        RowSet(
            "reference_rows",
            "p.reference_id = %(r)s AND p.ctid >= %(lo)s::tid AND p.ctid < %(hi)s::tid",
            {"r": reference_id, "lo": f"({first},0)", "hi": f"({first + CHUNK_BLOCKS},0)"},
        )
        for first in range(0, blocks + 1, CHUNK_BLOCKS)
    ]


def _matrix(conn: Connection, rows: RowSet, specs: Sequence[ColumnSpec]) -> FloatArray:
    parts = [m for _, m in numeric_groups(conn, rows, specs)]
    return np.concatenate(parts) if parts else np.empty((0, len(specs)))


def reference_numbers(
    conn: Connection, reference_id: int, specs: Sequence[ColumnSpec]
) -> list[FloatArray]:
    """Every numeric column of a (small) reference as one array each, NaN = missing."""
    matrix = _matrix(
        conn, RowSet("reference_rows", "p.reference_id = %(r)s", {"r": reference_id}), specs
    )
    return [np.ascontiguousarray(matrix[:, j]) for j in range(len(specs))]


CategoryCounts = dict[int, dict[str | None, int]]


@dataclass
class _Chunk:
    """One chunk of reference rows, its numeric columns binned."""

    rollups: list[NumericRollup]
    low: FloatArray
    high: FloatArray


def _read_chunk(
    rows: RowSet, numeric: Sequence[ColumnSpec], edges: Sequence[FloatArray], conn: Connection
) -> _Chunk:
    matrix = _matrix(conn, rows, numeric)
    rollups = [NumericRollup.of(matrix[:, j], e) for j, e in enumerate(edges)]
    if matrix.shape[0] == 0:
        nothing = np.full(len(numeric), np.inf)
        return _Chunk(rollups, nothing, -nothing)
    with np.errstate(all="ignore"):
        low, high = np.fmin.reduce(matrix, axis=0), np.fmax.reduce(matrix, axis=0)
    return _Chunk(rollups, low, high)


def _placed(sample: FloatArray, psi_bins: int) -> tuple[FloatArray, FloatArray, int]:
    """(fine edges, PSI edges, distinct values) from a sample of one column."""
    ordered = np.sort(sample)
    present = ordered[: int(np.count_nonzero(~np.isnan(ordered)))]
    if present.size == 0:
        return np.empty(0), np.empty(0), 0
    edges, psi = fine_edges(present, psi_bins)
    return edges, psi, int(np.count_nonzero(present[1:] != present[:-1]) + 1)


def _sampled_profiles(
    engine: Engine,
    reference_id: int,
    specs: tuple[Sequence[ColumnSpec], Sequence[ColumnSpec]],
    rows: int,
    psi_bins: int,
) -> tuple[list[ColumnProfile], CategoryCounts]:
    """Edges from a block sample of about ``SAMPLE_ROWS`` rows; then every row, chunk by chunk
    on ``colscan.SCAN_WORKERS`` connections, binned on them (and its categories counted)."""
    numeric, categorical = specs
    sampled = RowSet(
        "reference_rows",
        "p.reference_id = %(r)s",
        {"r": reference_id},
        sample_percent=min(100.0, 100.0 * SAMPLE_ROWS / rows),
    )
    with engine.connect() as conn:
        sample = _matrix(conn, sampled, numeric)
        if sample.shape[0] < min(rows, SAMPLE_ROWS) // 10:  # the sampled blocks missed it
            share = {"r": reference_id, "share": SAMPLE_ROWS / rows}
            rows_sample = RowSet(
                "reference_rows", "p.reference_id = %(r)s AND random() < %(share)s", share
            )
            sample = _matrix(conn, rows_sample, numeric)
        blocks = _blocks(conn)
    placed = [_placed(sample[:, j], psi_bins) for j in range(len(numeric))]
    edges = [p[0] for p in placed]
    everything = RowSet("reference_rows", "p.reference_id = %(r)s", {"r": reference_id})
    tasks: list[Callable[[Connection], Any]] = [  # the long one first, the chunks beside it
        partial(category_counts, rows=everything, specs=categorical),
        *(partial(_read_chunk, rows, numeric, edges) for rows in _chunks(reference_id, blocks)),
    ]
    counts, *chunks = run_parallel(engine, tasks)
    out = []
    for j, spec in enumerate(numeric):
        total = NumericRollup.empty(edges[j].size + 1)
        for chunk in chunks:
            total.add(chunk.rollups[j])
        extremes = (float(min(c.low[j] for c in chunks)), float(max(c.high[j] for c in chunks)))
        out.append(numeric_column(spec, edges[j], placed[j][1], total, extremes, placed[j][2]))
    return out, counts.get(("", None), {})


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
        specs = column_specs(conn, schema, reference_id, prediction_kind)
        rows = int(
            conn.execute(
                text("SELECT count(*) FROM reference_rows WHERE reference_id = :r"),
                {"r": reference_id},
            ).scalar_one()
        )
    numeric = [s for s in specs if s.kind == "numeric"]
    categorical = [s for s in specs if s.kind == "categorical" and s.role != "schema"]
    columns: dict[int, ColumnProfile] = {}
    if rows > SAMPLE_ROWS and numeric:
        profiled, counts = _sampled_profiles(
            engine, reference_id, (numeric, categorical), rows, psi_bins
        )
        columns |= {c.spec.col: c for c in profiled}
    else:
        everything = RowSet("reference_rows", "p.reference_id = %(r)s", {"r": reference_id})
        tasks: list[Callable[[Connection], Any]] = [
            partial(_matrix, rows=everything, specs=numeric),
            partial(category_counts, rows=everything, specs=categorical),
        ]
        matrix, by_group = run_parallel(engine, tasks)
        counts = by_group.get(("", None), {})
        for j, spec in enumerate(numeric):
            columns[spec.col] = numeric_profile(spec, matrix[:, j], psi_bins)
    for spec in categorical:
        columns[spec.col] = categorical_profile(spec, counts.get(spec.col, {}))
    for spec in specs:
        if spec.role == "schema":
            columns[spec.col] = ColumnProfile(spec, 0, rows, 0)
    return Profile(
        reference_id, model_id, rows, signature(psi_bins), tuple(columns[s.col] for s in specs)
    )
