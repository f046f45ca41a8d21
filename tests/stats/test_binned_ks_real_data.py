"""The rollup KS p-value is never below scipy's ``ks_2samp`` p-value on the raw samples, on real
data at small n: scikit-learn's bundled data sets (no download), every numeric column, random and
class-shifted splits, many seeds, binned as the reference profile bins them (``fine_edges``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
from scipy import stats
from sklearn import datasets

from monitor.stats import binned
from monitor.storage.drift.profiles import QUANTILE_BINS, fine_edges

DATASETS = ("breast_cancer", "wine", "diabetes", "digits", "iris")
SIZES = ((30, 20), (60, 25), (100, 40), (150, 60), (400, 120))  # (reference, current) rows
SEEDS = range(4)
RELATIVE = 1e-9  # floating point: the two compute the same law the same way


@cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    bunch = getattr(datasets, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


def _split(name: str, n_ref: int, n_cur: int, seed: int, shifted: bool) -> Iterator[np.ndarray]:
    """Row indexes of a reference and a current sample, disjoint; ``shifted``: the current one
    drawn from the rows whose target is above the median (a real drift)."""
    x, y = _data(name)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(x))
    ref = rows[:n_ref]
    rest = rows[n_ref:]
    if shifted:
        rest = rest[y[rest] > np.median(y)]
    yield ref
    yield rest[:n_cur]


def _cases() -> Iterator[tuple[str, int, int, int, bool, int]]:
    for name in DATASETS:
        n_rows, n_cols = _data(name)[0].shape
        for n_ref, n_cur in SIZES:
            if n_ref + 2 * n_cur > n_rows:
                continue
            for seed in SEEDS:
                for shifted in (False, True):
                    for col in range(n_cols):
                        yield name, n_ref, n_cur, seed, shifted, col


def _p_values(case: tuple[str, int, int, int, bool, int]) -> tuple[float, float] | None:
    name, n_ref, n_cur, seed, shifted, col = case
    ref_rows, cur_rows = _split(name, n_ref, n_cur, seed, shifted)
    values = _data(name)[0][:, col]
    ref, cur = values[ref_rows], values[cur_rows]
    if cur.size < 5:
        return None
    edges, _ = fine_edges(np.sort(ref), 10)
    rolled = binned.ks(binned.rollup(ref, edges), binned.rollup(cur, edges))
    return rolled.pvalue, float(stats.ks_2samp(ref, cur).pvalue)


def _quantile_cases() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Quantile bins (more distinct reference values than bins): fewer bins than values."""
    for name in DATASETS:
        x, _ = _data(name)
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            for col in range(x.shape[1]):
                rows = rng.permutation(len(x))
                yield x[rows[:100], col], x[rows[100:160], col]


def test_the_rollup_ks_p_value_is_never_below_the_exact_one_on_real_data() -> None:
    cases = below = 0
    worst = 0.0
    for case in _cases():
        pair = _p_values(case)
        if pair is None:
            continue
        rolled, exact = pair
        cases += 1
        if rolled < exact * (1 - RELATIVE):
            below += 1
            worst = max(worst, exact - rolled)
    assert cases > 2_000
    assert (below, worst) == (0, 0.0), f"{below} of {cases} below the exact p-value"


def test_with_coarse_bins_the_p_value_stays_above_the_exact_one() -> None:
    """Fewer bins than distinct values: the binned D is below the exact D, the p-value above."""
    n = 0
    for ref, cur in _quantile_cases():
        edges = np.quantile(ref, np.linspace(0, 1, 8)[1:-1])
        rolled = binned.ks(binned.rollup(ref, edges), binned.rollup(cur, edges))
        exact = stats.ks_2samp(ref, cur)
        assert rolled.statistic <= exact.statistic + 1e-12
        assert rolled.pvalue >= exact.pvalue * (1 - RELATIVE)
        n += 1
    assert n > 400
    assert QUANTILE_BINS > 8  # the profile's own quantile bins are finer than these


@pytest.mark.parametrize(("n_ref", "n_cur"), [(9_000, 3_000), (20_000, 600)])
def test_on_either_side_of_scipys_exact_limit_the_law_is_scipys(n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng(7)
    ref, cur = np.round(rng.normal(0, 1, n_ref), 1), np.round(rng.normal(0.05, 1, n_cur), 1)
    edges, _ = fine_edges(np.sort(ref), 10)
    rolled = binned.ks(binned.rollup(ref, edges), binned.rollup(cur, edges))
    exact = stats.ks_2samp(ref, cur)
    assert rolled.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert rolled.pvalue == pytest.approx(exact.pvalue, rel=1e-9)
