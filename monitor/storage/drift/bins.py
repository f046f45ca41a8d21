"""What a rollup holds: per-bin numeric sums and per-category counts, and how they add up.

A ``NumericRollup`` is a column's values on frozen bins (count, sum and sum of squares per bin,
plus missing values); a ``CategoryRollup`` is its count per category. Both add and subtract, so
time buckets sum to a window and a window minus its edges is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from monitor.stats.binned import Rollup

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_CATEGORIES = 1000
"""Categories kept by name per column; the rarer ones are counted together as ``n_other``."""


@dataclass
class NumericRollup:
    """Counts, sums and sums of squares per fine bin, plus the missing values."""

    n_missing: int
    counts: IntArray
    sums: FloatArray
    sumsq: FloatArray

    @classmethod
    def empty(cls, n_bins: int) -> NumericRollup:
        return cls(0, np.zeros(n_bins, np.int64), np.zeros(n_bins), np.zeros(n_bins))

    @classmethod
    def of(cls, values: FloatArray, edges: FloatArray) -> NumericRollup:
        """Bin raw values (NaN = missing) on ``edges`` as PostgreSQL's width_bucket would
        (bin i holds edges[i-1] <= x < edges[i])."""
        ordered = np.sort(values)  # NaN last
        present = ordered[: int(np.count_nonzero(~np.isnan(ordered)))]
        return cls.of_sorted(present, edges, missing=values.size - present.size)

    @classmethod
    def of_sorted(cls, present: FloatArray, edges: FloatArray, missing: int = 0) -> NumericRollup:
        """``of`` for values already sorted and without NaN: one pass, no per-value search."""
        size = edges.size + 1
        below = np.searchsorted(present, edges, side="left")  # values < each edge
        counts = np.diff(np.r_[0, below, present.size]).astype(np.int64)
        sums, sumsq = np.zeros(size), np.zeros(size)
        full = counts > 0
        if full.any():
            starts = np.r_[0, below][full]
            sums[full] = np.add.reduceat(present, starts)
            sumsq[full] = np.add.reduceat(present * present, starts)
        return cls(int(missing), counts, sums, sumsq)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def add(self, other: NumericRollup, sign: int = 1) -> None:
        self.n_missing += sign * other.n_missing
        self.counts += sign * other.counts
        self.sums += sign * other.sums
        self.sumsq += sign * other.sumsq

    def stats(self) -> Rollup:
        return Rollup(self.counts.astype(np.float64), self.sums.copy(), self.sumsq.copy())


@dataclass
class CategoryRollup:
    """Count per category (the most frequent ``MAX_CATEGORIES``), the rest, and missing."""

    n_missing: int
    counts: dict[str, int] = field(default_factory=dict)
    n_other: int = 0

    @property
    def n(self) -> int:
        return sum(self.counts.values()) + self.n_other

    def add(self, other: CategoryRollup, sign: int = 1) -> None:
        self.n_missing += sign * other.n_missing
        self.n_other += sign * other.n_other
        merged = Counter(self.counts)
        for key, value in other.counts.items():
            merged[key] += sign * value
        self.counts = {k: v for k, v in merged.items() if v != 0}
        self._cap()

    def _cap(self) -> None:
        if len(self.counts) <= MAX_CATEGORIES and min(self.counts.values(), default=0) >= 0:
            return
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [(k, v) for k, v in ranked[:MAX_CATEGORIES] if v > 0]
        self.n_other += sum(v for _, v in ranked) - sum(v for _, v in kept)
        self.counts = dict(kept)


def schema_rollup(rows: int, with_any: int, names: Mapping[str | None, int]) -> CategoryRollup:
    """The unknown-features column: rows carrying each unknown name, and the rows with none as
    missing. A row can carry several names, so ``n_other`` (<= 0) brings ``n`` back to the rows
    with any, keeping ``n + n_missing`` the bucket's row count as for every column."""
    present = {k: v for k, v in names.items() if k is not None}
    return CategoryRollup(rows - with_any, present, with_any - sum(present.values()))


ColumnRollup = NumericRollup | CategoryRollup
Columns = dict[int, ColumnRollup]
Deltas = dict[tuple[str, datetime], Columns]  # (model version, hour bucket) -> col -> rollup


def _empty_like(rollup: ColumnRollup) -> ColumnRollup:
    if isinstance(rollup, NumericRollup):
        return NumericRollup.empty(rollup.counts.size)
    return CategoryRollup(0)


def add_columns(into: Columns, other: Mapping[int, ColumnRollup], sign: int = 1) -> None:
    """``into += sign * other``, column by column."""
    for col, rollup in other.items():
        target = into.get(col)
        if target is None:
            target = into[col] = _empty_like(rollup)
        if isinstance(target, NumericRollup) != isinstance(rollup, NumericRollup):
            raise TypeError(f"column {col} is numeric on one side only")
        target.add(rollup, sign)  # type: ignore[arg-type]
