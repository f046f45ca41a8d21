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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from monitor.ingest.schema import FeatureSchema
from monitor.stats import drift
from monitor.stats.binned import Rollup
from monitor.storage.colscan import (
    ColumnKind,
    ColumnSpec,
    Role,
    RowSet,
    category_counts,
    numeric_groups,
    numpy_cursor,
)
from monitor.storage.pgbinary import float8_array, int8_array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILE_BINS = 500
EXACT_VALUES_MAX = 1000
MAX_CATEGORIES = 1000
PROFILE_VERSION = 1
_CHUNK_BLOCKS = 2048  # reference rows read per query: ~60k rows, ~13 MB


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

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def numeric(self) -> bool:
        return self.spec.kind == "numeric"

    @property
    def exact_values(self) -> bool:
        """Fine bins hold one reference value each (see the module docstring)."""
        return self.numeric and 0 < self.n_unique <= EXACT_VALUES_MAX

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
    """(fine interior edges, PSI edges) for sorted, non-empty reference values."""
    distinct = sorted_values[np.r_[True, sorted_values[1:] != sorted_values[:-1]]]
    if distinct.size <= EXACT_VALUES_MAX:
        fine = np.ravel(np.column_stack([distinct, np.nextafter(distinct, np.inf)]))
    else:
        steps = np.linspace(0, sorted_values.size - 1, QUANTILE_BINS + 1)
        picks = sorted_values[np.round(steps).astype(np.intp)]
        fine = np.r_[picks, np.nextafter(sorted_values[-1], np.inf)]
    psi = drift.psi_bins(sorted_values, psi_bins)
    return np.unique(np.r_[fine, psi]), psi


def numeric_profile(spec: ColumnSpec, values: FloatArray, psi_bins: int) -> ColumnProfile:
    """Profile of one numeric column; ``values`` may hold NaN for missing."""
    present = np.sort(values[~np.isnan(values)])
    missing = int(values.size - present.size)
    if present.size == 0:
        return ColumnProfile(spec, 0, missing, 0)
    edges, psi = fine_edges(present, psi_bins)
    counts = np.diff(np.r_[0, np.searchsorted(present, edges, side="left"), present.size])
    index = np.repeat(np.arange(counts.size), counts)
    n_unique = int(np.count_nonzero(present[1:] != present[:-1]) + 1)
    return ColumnProfile(
        spec,
        n=int(present.size),
        n_missing=missing,
        n_unique=n_unique,
        min=float(present[0]),
        max=float(present[-1]),
        mean=float(np.mean(present)),
        std=float(np.std(present)),
        edges=edges,
        psi_edges=psi,
        counts=counts.astype(np.int64),
        sums=np.bincount(index, weights=present, minlength=counts.size).astype(np.float64),
        sumsq=np.bincount(index, weights=present * present, minlength=counts.size).astype(
            np.float64
        ),
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


def reference_numbers(
    conn: Connection, reference_id: int, specs: Sequence[ColumnSpec]
) -> list[FloatArray]:
    """Every numeric column of the reference as one array (NaN = missing), read in chunks of
    table blocks so no single message holds the whole set."""
    blocks = int(
        conn.execute(
            text("SELECT pg_relation_size('reference_rows') / current_setting('block_size')::int")
        ).scalar_one()
    )
    parts: list[FloatArray] = []
    for first in range(0, blocks + 1, _CHUNK_BLOCKS):
        rows = RowSet(
            "reference_rows",
            "p.reference_id = %(r)s AND p.ctid >= %(lo)s::tid AND p.ctid < %(hi)s::tid",
            {"r": reference_id, "lo": f"({first},0)", "hi": f"({first + _CHUNK_BLOCKS},0)"},
        )
        parts.extend(m for _, m in numeric_groups(conn, rows, specs))
    matrix = np.concatenate(parts) if parts else np.empty((0, len(specs)))
    return [np.ascontiguousarray(matrix[:, j]) for j in range(len(specs))]


def build_profile(
    conn: Connection,
    reference_id: int,
    model_id: int,
    schema: FeatureSchema,
    prediction_kind: str | None,
    psi_bins: int,
) -> Profile:
    """Compute the profile of a reference set (not stored; see ``store_profile``)."""
    specs = column_specs(conn, schema, reference_id, prediction_kind)
    numeric = [s for s in specs if s.kind == "numeric"]
    categorical = [s for s in specs if s.kind == "categorical" and s.role != "schema"]
    rows = RowSet("reference_rows", "p.reference_id = %(r)s", {"r": reference_id})
    counts = category_counts(conn, rows, categorical).get(("", None), {})
    columns: dict[int, ColumnProfile] = {}
    for spec, values in zip(numeric, reference_numbers(conn, reference_id, numeric), strict=True):
        columns[spec.col] = numeric_profile(spec, values, psi_bins)
    row_count = max((c.n + c.n_missing for c in columns.values()), default=0)
    for spec in categorical:
        columns[spec.col] = categorical_profile(spec, counts.get(spec.col, {}))
        row_count = max(row_count, columns[spec.col].n + columns[spec.col].n_missing)
    for spec in specs:
        if spec.role == "schema":
            columns[spec.col] = ColumnProfile(spec, 0, row_count, 0)
    return Profile(
        reference_id, model_id, row_count, signature(psi_bins), tuple(columns[s.col] for s in specs)
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
    )
