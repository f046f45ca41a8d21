"""One column's drift: reference profile vs current window, by ``monitor.stats`` functions.

Two paths, both ending in a ``ColumnDrift``:

- ``from_rollups``: the current window's rollup on the profile's frozen bins (any window size).
  Categorical statistics are exact; numeric ones are exact for the frozen bins (KS too when
  every reference value has its own bin), Wasserstein within ``binned.wasserstein_error_bound``.
- ``from_samples``: raw numeric values of a small window and of the reference, the statistics
  of ``monitor.stats.drift`` on the samples themselves (scipy's exact KS p-value, exact
  Wasserstein, values never merged into bins).

The verdict (thresholds, minimum samples, multiple-testing correction) is applied afterwards,
over all features at once (``monitor.stats.verdict``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from monitor.schemas import DriftSettings
from monitor.stats import binned, drift, selection, verdict
from monitor.stats.binned import Rollup
from monitor.stats.selection import MethodChoice
from monitor.storage.drift.bins import CategoryRollup, NumericRollup
from monitor.storage.drift.profiles import ColumnProfile

FloatArray = npt.NDArray[np.float64]
Path = Literal["exact", "rollup"]

OTHER = "\x00other"  # categories beyond the kept ones; NUL never occurs in PostgreSQL text
_NUMERIC_METHODS = frozenset({"ks", "wasserstein", "psi"})


@dataclass(frozen=True)
class ColumnDrift:
    """A column's drift figure before and after the verdict."""

    name: str
    role: str  # feature | prediction | label
    kind: str  # numeric | categorical
    choice: MethodChoice
    score: float
    pvalue: float | None
    n_ref: int
    n_cur: int
    psi: float | None
    path: Path
    error_bound: float | None = None
    detected: bool | None = None
    adjusted_pvalue: float | None = None

    @property
    def method(self) -> str:
        return self.choice.method

    @property
    def threshold(self) -> float:
        return self.choice.threshold

    def decisive(self) -> float:
        """The number compared with the threshold (the corrected p-value where corrected)."""
        if self.choice.kind == "pvalue":
            p = self.adjusted_pvalue if self.adjusted_pvalue is not None else self.pvalue
            return 1.0 if p is None else p
        return self.score

    def judged(self, min_samples: int) -> ColumnDrift:
        detected = verdict.guarded_verdict(
            self.decisive(),
            self.choice,
            n_ref=self.n_ref,
            n_cur=self.n_cur,
            min_samples=min_samples,
        )
        return replace(self, detected=detected)


def _choice(
    name: str, *, numeric: bool, n_unique: int, n_ref: int, settings: DriftSettings
) -> MethodChoice:
    return selection.choose_method(
        numeric=numeric,
        n_unique=n_unique,
        n_ref=n_ref,
        method=settings.methods.get(name),
        threshold=settings.thresholds.get(name),
        small_reference_rows=settings.large_reference_rows,
    )


def _psi_counts(ref: ColumnProfile, counts: FloatArray) -> FloatArray:
    coarse: FloatArray = np.add.reduceat(counts, ref.psi_groups())
    return coarse


def _safe_psi(ref_counts: FloatArray, cur_counts: FloatArray) -> float | None:
    if ref_counts.sum() <= 0 or cur_counts.sum() <= 0:
        return None
    return drift.psi(ref_counts, cur_counts)


def numeric_from_rollups(
    ref: ColumnProfile, cur: NumericRollup, settings: DriftSettings
) -> ColumnDrift | None:
    """A numeric column from its window rollup; None when either side has no values."""
    if ref.n == 0 or cur.n == 0:
        return None
    ref_rollup, cur_rollup = ref.rollup(), cur.stats()
    new_values = int(np.count_nonzero(cur.counts[ref.counts == 0]))
    n_unique = ref.n_unique + new_values if ref.exact_values else ref.n_unique
    choice = _choice(ref.name, numeric=True, n_unique=n_unique, n_ref=ref.n, settings=settings)
    method = selection.METHODS[choice.method]
    bound: float | None = None
    if choice.method in _NUMERIC_METHODS:
        score = method.binned(ref_rollup, cur_rollup)
        if choice.method == "wasserstein":
            bound = binned.wasserstein_error_bound(ref_rollup, cur_rollup)
        elif choice.method == "ks" and not ref.exact_values:
            bound = binned.ks_upper_bound(ref_rollup, cur_rollup) - score.statistic
    else:  # a test on counts: every fine bin is a category (exact per value if exact_values)
        score = method.binned(Rollup(ref_rollup.counts), Rollup(cur_rollup.counts))
    psi = _safe_psi(_psi_counts(ref, ref_rollup.counts), _psi_counts(ref, cur_rollup.counts))
    return ColumnDrift(
        ref.name,
        ref.spec.role,
        "numeric",
        choice,
        score.statistic,
        score.pvalue,
        ref.n,
        cur.n,
        psi,
        "rollup",
        bound,
    )


def numeric_from_samples(
    ref: ColumnProfile, ref_values: FloatArray, cur_values: FloatArray, settings: DriftSettings
) -> ColumnDrift | None:
    """A numeric column from raw samples (NaN = missing, dropped)."""
    r, c = ref_values[~np.isnan(ref_values)], cur_values[~np.isnan(cur_values)]
    if r.size == 0 or c.size == 0:
        return None
    n_unique = selection.unique_count(r, c)
    choice = _choice(ref.name, numeric=True, n_unique=n_unique, n_ref=r.size, settings=settings)
    score = selection.METHODS[choice.method].exact(r, c, True)
    psi: float | None = None
    if ref.psi_edges is not None:
        psi = drift.psi(drift.bin_counts(r, ref.psi_edges), drift.bin_counts(c, ref.psi_edges))
    return ColumnDrift(
        ref.name,
        ref.spec.role,
        "numeric",
        choice,
        score.statistic,
        score.pvalue,
        int(r.size),
        int(c.size),
        psi,
        "exact",
    )


def _with_other(counts: dict[str, float], other: int) -> dict[str, float]:
    return {**counts, OTHER: float(other)} if other else counts


def categorical_from_counts(
    ref: ColumnProfile, cur: CategoryRollup, settings: DriftSettings
) -> ColumnDrift | None:
    """A categorical column from its category counts (exact unless categories were capped)."""
    if ref.n == 0 or cur.n == 0:
        return None
    ref_map = _with_other(ref.category_map(), ref.n_other)
    cur_map = _with_other({k: float(v) for k, v in cur.counts.items()}, cur.n_other)
    _, ref_rollup, cur_rollup = binned.align_categories(ref_map, cur_map)
    n_unique = int(np.count_nonzero(ref_rollup.counts + cur_rollup.counts))
    choice = _choice(ref.name, numeric=False, n_unique=n_unique, n_ref=ref.n, settings=settings)
    score = selection.METHODS[choice.method].binned(ref_rollup, cur_rollup)
    psi = _safe_psi(ref_rollup.counts, cur_rollup.counts)
    return ColumnDrift(
        ref.name,
        ref.spec.role,
        "categorical",
        choice,
        score.statistic,
        score.pvalue,
        ref.n,
        cur.n,
        psi,
        "rollup",
    )


def judge(features: list[ColumnDrift], settings: DriftSettings) -> list[ColumnDrift]:
    """Verdicts for the features of one version: the multiple-testing correction over those with
    enough samples, then thresholds and the minimum-sample guard."""
    eligible = [i for i, f in enumerate(features) if min(f.n_ref, f.n_cur) >= settings.min_samples]
    corrected = verdict.correct_pvalues(
        [features[i].decisive() for i in eligible],
        [features[i].choice for i in eligible],
        settings.correction,
    )
    out = list(features)
    for i, value in zip(eligible, corrected, strict=True):
        if features[i].choice.kind == "pvalue" and settings.correction != "none":
            out[i] = replace(out[i], adjusted_pvalue=value)
    return [f.judged(settings.min_samples) for f in out]
