"""A reference set's frozen drift profile: bins, counts and moments per column, computed once.

Numeric columns get *fine bins* on frozen interior edges (``width_bucket`` convention: bin i
holds edges[i-1] <= x < edges[i], the outer bins are open):

- with at most ``EXACT_VALUES_MAX`` distinct reference values, the edges are every value v and
  the next float above it, so each reference value has a bin of its own and every gap between
  two values has one too. KS on such bins equals KS on the raw samples, and counts per value are
  exact (chi-square / z-test / Jensen-Shannon for columns with few values);
- otherwise the edges are the reference's order statistics at ``QUANTILE_BINS`` equal-mass steps,
  plus min and the next float above max, so out-of-range values have bins of their own.

The PSI edges (``monitor.stats.drift.psi_bins``) are added to the fine edges, so PSI counts are
sums of fine-bin counts. Categorical columns keep their ``MAX_CATEGORIES`` most frequent
categories by name and the rest as ``n_other``. The reference rows stay in ``reference_rows``
for the exact tests on small windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, text

from monitor.ingest.schema import FeatureSchema
from monitor.stats import binned, drift
from monitor.stats.binned import Rollup
from monitor.storage.bins import MAX_CATEGORIES, NumericRollup
from monitor.storage.colscan import (
    ColumnKind,
    ColumnSpec,
    Role,
    RowSet,
    category_counts,
    numeric_groups,
    numpy_cursor,
    run_parallel,
)
from monitor.storage.pgbinary import float8_array, int8_array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILE_BINS = 500
EXACT_VALUES_MAX = 1000
PROFILE_VERSION = 2
SAMPLE_ROWS = 100_000
"""Reference rows (a uniform random sample) that place the fine and PSI edges of a larger
reference; every reference row is then counted on them."""
_CHUNK_BLOCKS = 1024  # reference rows read per query: ~30k rows, ~6 MB


def signature(psi_bins: int) -> str:
    """What the stored profile (and the rollups on its edges) were computed with."""
    return (
        f"v{PROFILE_VERSION};quantile_bins={QUANTILE_BINS};exact_values={EXACT_VALUES_MAX};"
        f"categories={MAX_CATEGORIES};psi_bins={psi_bins}"
    )


@dataclass(frozen=True)
class ColumnProfile:
    spec: ColumnSpec
    n: int
    n_missing: int
    n_unique: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    edges: FloatArray | None = None
    psi_edges: FloatArray | None = None
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sums: FloatArray | None = None
    sumsq: FloatArray | None = None
    categories: tuple[str, ...] = ()
    n_other: int = 0
    exact_values: bool = False  # every reference value has a bin of its own

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def numeric(self) -> bool:
        return self.spec.kind == "numeric"

    @property
    def n_bins(self) -> int:
        return 0 if self.edges is None else self.edges.size + 1

    def rollup(self) -> Rollup:
        """The reference on its fine bins (numeric) or as counts per kept category."""
        counts = self.counts.astype(np.float64)
        return Rollup(counts, self.sums, self.sumsq) if self.numeric else Rollup(counts)

    def category_map(self) -> dict[str, float]:
        return {c: float(n) for c, n in zip(self.categories, self.counts, strict=True)}

    def psi_groups(self) -> npt.NDArray[np.intp]:
        """Start index of each PSI bin among the fine bins (for ``numpy.add.reduceat``)."""
        assert self.edges is not None
        assert self.psi_edges is not None
        starts: npt.NDArray[np.intp] = np.r_[0, np.searchsorted(self.edges, self.psi_edges) + 1]
        return starts.astype(np.intp)


@dataclass(frozen=True)
class Profile:
    reference_id: int
    model_id: int
    row_count: int
    signature: str
    columns: tuple[ColumnProfile, ...]

    def of_role(self, *roles: Role) -> list[ColumnProfile]:
        return [c for c in self.columns if c.spec.role in roles]

    def by_kind(self, kind: ColumnKind) -> list[ColumnProfile]:
        """Columns read from prediction rows (not the label) of one kind, in column order."""
        return [
            c
            for c in self.columns
            if c.spec.kind == kind and c.spec.role in ("feature", "prediction")
        ]


# --- pure: profile of one column's values ------------------------------------------------


def fine_edges(sorted_values: FloatArray, psi_bins: int) -> tuple[FloatArray, FloatArray]:
    """(fine interior edges, PSI edges) from sorted, non-empty reference values (or a sample)."""
    distinct = sorted_values[np.r_[True, sorted_values[1:] != sorted_values[:-1]]]
    if distinct.size <= EXACT_VALUES_MAX:
        fine = np.ravel(np.column_stack([distinct, np.nextafter(distinct, np.inf)]))
    else:
        steps = np.linspace(0, sorted_values.size - 1, QUANTILE_BINS + 1)
        picks = sorted_values[np.round(steps).astype(np.intp)]
        fine = np.r_[picks, np.nextafter(sorted_values[-1], np.inf)]
    psi = drift.psi_bins(sorted_values, psi_bins)
    return np.unique(np.r_[fine, psi]), psi


def value_bins_only(edges: FloatArray, counts: IntArray) -> bool:
    """Whether every non-empty bin holds a single value v (it spans [v, next float above v))."""
    if edges.size == 0:
        return False
    single = np.zeros(edges.size + 1, dtype=bool)
    single[1:-1] = edges[1:] == np.nextafter(edges[:-1], np.inf)
    return bool(np.all(single[counts > 0]))


def _numeric_column(
    spec: ColumnSpec,
    edges: FloatArray,
    psi: FloatArray,
    rollup: NumericRollup,
    extremes: tuple[float, float],
    sample_unique: int,
) -> ColumnProfile:
    n = rollup.n
    if n == 0:
        return ColumnProfile(spec, 0, rollup.n_missing, 0)
    exact = value_bins_only(edges, rollup.counts)
    filled = int(np.count_nonzero(rollup.counts))
    stats = rollup.stats()
    return ColumnProfile(
        spec,
        n=n,
        n_missing=rollup.n_missing,
        n_unique=filled if exact else max(filled, sample_unique),
        min=extremes[0],
        max=extremes[1],
        mean=float(rollup.sums.sum() / n),
        std=binned.reference_std(stats),
        edges=edges,
        psi_edges=psi,
        counts=rollup.counts,
        sums=rollup.sums,
        sumsq=rollup.sumsq,
        exact_values=exact,
    )


def numeric_profile(spec: ColumnSpec, values: FloatArray, psi_bins: int) -> ColumnProfile:
    """Profile of one numeric column from all its values (NaN = missing)."""
    ordered = np.sort(values)
    present = ordered[: int(np.count_nonzero(~np.isnan(ordered)))]
    if present.size == 0:
        return ColumnProfile(spec, 0, int(values.size), 0)
    edges, psi = fine_edges(present, psi_bins)
    rollup = NumericRollup.of_sorted(present, edges, missing=values.size - present.size)
    unique = int(np.count_nonzero(present[1:] != present[:-1]) + 1)
    return _numeric_column(
        spec, edges, psi, rollup, (float(present[0]), float(present[-1])), unique
    )


def categorical_profile(spec: ColumnSpec, counts: Mapping[str | None, int]) -> ColumnProfile:
    present = {k: v for k, v in counts.items() if k is not None}
    ranked = sorted(present.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = sorted(ranked[:MAX_CATEGORIES])
    return ColumnProfile(
        spec,
        n=sum(present.values()),
        n_missing=int(counts.get(None, 0)),
        n_unique=len(present),
        counts=np.array([v for _, v in kept], dtype=np.int64),
        categories=tuple(k for k, _ in kept),
        n_other=sum(v for _, v in ranked[MAX_CATEGORIES:]),
    )


# --- building from reference_rows ---------------------------------------------------------


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
            {"r": reference_id, "lo": f"({first},0)", "hi": f"({first + _CHUNK_BLOCKS},0)"},
        )
        for first in range(0, blocks + 1, _CHUNK_BLOCKS)
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
        out.append(_numeric_column(spec, edges[j], placed[j][1], total, extremes, placed[j][2]))
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


# --- storage --------------------------------------------------------------------------------

_COLUMNS = (
    "col, name, role, kind, position, n, n_missing, n_unique, min, max, mean, std, edges, "
    "psi_edges, counts, sums, sumsq, categories, n_other"
)


def _optional(values: FloatArray | None) -> Any:
    return None if values is None else float8_array(values)


def store_profile(conn: Connection, profile: Profile) -> None:
    """Replace the stored profile of the reference set (its rollups go with the old one)."""
    conn.execute(
        text("DELETE FROM drift_profiles WHERE reference_id = :r"), {"r": profile.reference_id}
    )
    conn.execute(
        text(
            "INSERT INTO drift_profiles (reference_id, model_id, signature, row_count) "
            "VALUES (:r, :m, :s, :n)"
        ),
        {
            "r": profile.reference_id,
            "m": profile.model_id,
            "s": profile.signature,
            "n": profile.row_count,
        },
    )
    params = [
        (
            profile.reference_id,
            c.spec.col,
            c.spec.name,
            c.spec.role,
            c.spec.kind,
            c.spec.position,
            c.n,
            c.n_missing,
            c.n_unique,
            c.min,
            c.max,
            c.mean,
            c.std,
            _optional(c.edges),
            _optional(c.psi_edges),
            int8_array(c.counts),
            _optional(c.sums),
            _optional(c.sumsq),
            list(c.categories),
            c.n_other,
        )
        for c in profile.columns
    ]
    placeholders = ", ".join(["%s"] * 20)
    with numpy_cursor(conn) as cur:
        cur.executemany(
            f"INSERT INTO drift_profile_columns (reference_id, {_COLUMNS}) VALUES ({placeholders})",
            params,
        )


def load_profile(conn: Connection, reference_id: int) -> Profile | None:
    with numpy_cursor(conn) as cur:
        cur.execute(
            "SELECT model_id, row_count, signature FROM drift_profiles WHERE reference_id = %s",
            (reference_id,),
        )
        head = cur.fetchone()
        if head is None:
            return None
        cur.execute(
            f"SELECT {_COLUMNS} FROM drift_profile_columns WHERE reference_id = %s ORDER BY col",
            (reference_id,),
        )
        columns = tuple(_column(row) for row in cur)
    return Profile(reference_id, int(head[0]), int(head[1]), str(head[2]), columns)


def _column(row: Sequence[Any]) -> ColumnProfile:
    (
        col,
        name,
        role,
        kind,
        position,
        n,
        n_missing,
        n_unique,
        lo,
        hi,
        mean,
        std,
        edges,
        psi_edges,
        counts,
        sums,
        sumsq,
        categories,
        n_other,
    ) = row
    return ColumnProfile(
        ColumnSpec(col, name, role, kind, position),
        n=int(n),
        n_missing=int(n_missing),
        n_unique=int(n_unique),
        min=lo,
        max=hi,
        mean=mean,
        std=std,
        edges=edges,
        psi_edges=psi_edges,
        counts=counts if counts is not None else np.zeros(0, dtype=np.int64),
        sums=sums,
        sumsq=sumsq,
        categories=tuple(categories or ()),
        n_other=int(n_other),
        exact_values=edges is not None and counts is not None and value_bins_only(edges, counts),
    )
