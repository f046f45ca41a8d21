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
for the exact tests on small windows. Building from the database: ``profile_build``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from monitor.stats import binned, drift
from monitor.stats.binned import Rollup
from monitor.storage.drift.bins import MAX_CATEGORIES, NumericRollup
from monitor.storage.drift.colscan import (
    ColumnKind,
    ColumnSpec,
    Role,
    numpy_cursor,
)
from monitor.storage.drift.pgbinary import float8_array, int8_array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILE_BINS = 500
EXACT_VALUES_MAX = 1000
PROFILE_VERSION = 2


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


def numeric_column(
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
    return numeric_column(spec, edges, psi, rollup, (float(present[0]), float(present[-1])), unique)


def categorical_profile(
    spec: ColumnSpec, counts: Mapping[str | None, int], other: int = 0
) -> ColumnProfile:
    """Profile of a categorical column from its counts (None: missing; ``other``: values
    already merged beyond the category cap)."""
    present = {k: v for k, v in counts.items() if k is not None}
    ranked = sorted(present.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = sorted(ranked[:MAX_CATEGORIES])
    return ColumnProfile(
        spec,
        n=sum(present.values()) + other,
        n_missing=int(counts.get(None, 0)),
        n_unique=len(present) + (1 if other else 0),
        counts=np.array([v for _, v in kept], dtype=np.int64),
        categories=tuple(k for k, _ in kept),
        n_other=sum(v for _, v in ranked[MAX_CATEGORIES:]) + other,
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
