"""Which drift method a column gets, and the registry of methods.

The default reproduces Evidently 0.7's data-drift preset (``_get_default_stattest`` in
``evidently.legacy.calculations.stattests.registry``), with our two-sample chi-square in place
of Evidently's goodness-of-fit one:

| column                                  | reference ≤ 1000 rows       | > 1000 rows           |
| --------------------------------------- | --------------------------- | --------------------- |
| numeric, > 5 unique values              | ``ks``, drift if p ≤ 0.05   | ``wasserstein`` ≥ 0.1 |
| categorical, or numeric with ≤ 5 unique | ``chisquare``, p < 0.05     | ``jensenshannon`` ≥ 0.1 |
| ... with ≤ 2 unique values (binary)     | ``ztest``, p < 0.05         | ``jensenshannon`` ≥ 0.1 |

"Unique values" counts the union of reference and current, as Evidently does. Evidently compares
KS p-values with ≤ but chi-square and z-test p-values with <; ``MethodChoice.inclusive`` keeps
that difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from monitor.errors import ConfigError
from monitor.stats import binned, drift
from monitor.stats.binned import Rollup

Kind = Literal["pvalue", "distance"]
ColumnKind = Literal["numeric", "categorical"]

SMALL_REFERENCE_ROWS = 1000
FEW_UNIQUE = 5
BINARY = 2
PSI_BINS = 10


@dataclass(frozen=True, slots=True)
class Score:
    """What a method measured: its statistic and, for a test, its p-value."""

    statistic: float
    pvalue: float | None = None

    def decisive(self, kind: Kind) -> float:
        """The number the threshold applies to: the p-value of a test, else the statistic."""
        if kind == "pvalue":
            if self.pvalue is None:
                raise ValueError("a p-value method produced no p-value")
            return self.pvalue
        return self.statistic


@dataclass(frozen=True, slots=True)
class MethodChoice:
    """A method with its threshold. Drift when p < threshold (p ≤ if ``inclusive``) for a
    p-value method, when score ≥ threshold (> if not ``inclusive``) for a distance."""

    method: str
    threshold: float
    kind: Kind
    inclusive: bool = True


ExactFn = Callable[[npt.ArrayLike, npt.ArrayLike, bool], Score]
BinnedFn = Callable[[Rollup, Rollup], Score]


@dataclass(frozen=True, slots=True)
class Method:
    """A drift method: defaults, applicable columns, and its exact and rollup implementations.

    ``exact(ref, cur, numeric)`` takes raw samples; ``binned(ref, cur)`` takes rollups on shared
    bins (frozen numeric edges, or categories aligned with ``binned.align_categories``).
    On a numeric column, exact ``jensenshannon`` bins like Evidently (Sturges over both
    samples) while its rollup version uses the frozen bins; exact ``psi`` uses reference deciles,
    the bins rollups freeze, so exact and rollup PSI agree.
    """

    name: str
    kind: Kind
    default_threshold: float
    inclusive: bool
    columns: frozenset[ColumnKind]
    exact: ExactFn
    binned: BinnedFn


def _test(result: drift.TestResult) -> Score:
    return Score(result.statistic, result.pvalue)


def _counts(ref: npt.ArrayLike, cur: npt.ArrayLike, numeric: bool) -> tuple[Rollup, Rollup]:
    """Raw samples as rollups: frozen reference quantile bins if numeric, else categories."""
    if numeric:
        edges = drift.psi_bins(ref, PSI_BINS)
        return Rollup(drift.bin_counts(ref, edges)), Rollup(drift.bin_counts(cur, edges))
    _, ref_counts, cur_counts = drift.category_counts(ref, cur)
    return Rollup(ref_counts), Rollup(cur_counts)


def _exact_ks(ref: npt.ArrayLike, cur: npt.ArrayLike, _numeric: bool) -> Score:
    return _test(drift.ks(ref, cur))


def _exact_wasserstein(ref: npt.ArrayLike, cur: npt.ArrayLike, _numeric: bool) -> Score:
    return Score(drift.wasserstein_normed(ref, cur))


def _exact_chisquare(ref: npt.ArrayLike, cur: npt.ArrayLike, _numeric: bool) -> Score:
    _, ref_counts, cur_counts = drift.category_counts(ref, cur)
    return _test(drift.chi_square_two_sample(ref_counts, cur_counts))


def _exact_ztest(ref: npt.ArrayLike, cur: npt.ArrayLike, _numeric: bool) -> Score:
    return _test(drift.z_test_proportions(ref, cur))


def _exact_jensenshannon(ref: npt.ArrayLike, cur: npt.ArrayLike, numeric: bool) -> Score:
    return Score(drift.jensen_shannon(ref, cur, numeric=numeric))


def _exact_psi(ref: npt.ArrayLike, cur: npt.ArrayLike, numeric: bool) -> Score:
    ref_rollup, cur_rollup = _counts(ref, cur, numeric)
    return Score(binned.psi(ref_rollup, cur_rollup))


def _binned_ks(ref: Rollup, cur: Rollup) -> Score:
    return _test(binned.ks(ref, cur))


def _binned_wasserstein(ref: Rollup, cur: Rollup) -> Score:
    return Score(binned.wasserstein_normed(ref, cur))


def _binned_chisquare(ref: Rollup, cur: Rollup) -> Score:
    return _test(binned.chi_square(ref, cur))


def _binned_ztest(ref: Rollup, cur: Rollup) -> Score:
    return _test(binned.z_test(ref, cur))


def _binned_jensenshannon(ref: Rollup, cur: Rollup) -> Score:
    return Score(binned.jensen_shannon(ref, cur))


def _binned_psi(ref: Rollup, cur: Rollup) -> Score:
    return Score(binned.psi(ref, cur))


_NUMERIC: frozenset[ColumnKind] = frozenset({"numeric"})
_BOTH: frozenset[ColumnKind] = frozenset({"numeric", "categorical"})

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "pvalue", 0.05, True, _NUMERIC, _exact_ks, _binned_ks),
        Method(
            "wasserstein", "distance", 0.1, True, _NUMERIC, _exact_wasserstein, _binned_wasserstein
        ),
        Method("chisquare", "pvalue", 0.05, False, _BOTH, _exact_chisquare, _binned_chisquare),
        Method("ztest", "pvalue", 0.05, False, _BOTH, _exact_ztest, _binned_ztest),
        Method(
            "jensenshannon",
            "distance",
            0.1,
            True,
            _BOTH,
            _exact_jensenshannon,
            _binned_jensenshannon,
        ),
        Method("psi", "distance", 0.1, True, _BOTH, _exact_psi, _binned_psi),
    )
}


def default_method(
    *, numeric: bool, n_unique: int, n_ref: int, small_reference_rows: int = SMALL_REFERENCE_ROWS
) -> str:
    """Evidently's default for a column (see the module table)."""
    small = n_ref <= small_reference_rows
    if numeric and n_unique > FEW_UNIQUE:
        return "ks" if small else "wasserstein"
    if not small:
        return "jensenshannon"
    return "ztest" if n_unique <= BINARY else "chisquare"


def choose_method(
    *,
    numeric: bool,
    n_unique: int,
    n_ref: int,
    method: str | None = None,
    threshold: float | None = None,
    small_reference_rows: int = SMALL_REFERENCE_ROWS,
) -> MethodChoice:
    """The method and threshold for a column; ``method``/``threshold`` are per-feature overrides.

    Raises ``ConfigError`` for an unknown method or one that does not apply to the column.
    """
    name = method or default_method(
        numeric=numeric, n_unique=n_unique, n_ref=n_ref, small_reference_rows=small_reference_rows
    )
    spec = _lookup(name, "numeric" if numeric else "categorical")
    chosen = spec.default_threshold if threshold is None else threshold
    return MethodChoice(name, chosen, spec.kind, spec.inclusive)


def _lookup(name: str, column: ColumnKind) -> Method:
    spec = METHODS.get(name)
    if spec is None:
        raise ConfigError(f"unknown drift method {name!r}; known: {', '.join(sorted(METHODS))}")
    if column not in spec.columns:
        raise ConfigError(f"drift method {name!r} does not apply to {column} columns")
    return spec


def unique_count(ref: npt.ArrayLike, cur: npt.ArrayLike) -> int:
    """Distinct values over both samples, the count the default choice depends on."""
    return int(np.unique(np.concatenate([np.ravel(ref), np.ravel(cur)])).size)
