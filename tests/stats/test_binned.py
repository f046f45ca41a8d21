"""Statistics from rollups against the exact statistics on the same raw data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.stats import binned, drift
from monitor.stats.binned import Rollup

SEEDS = range(6)


def _pair(seed: int, dist: str, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if dist == "normal":
        return rng.normal(10, 2, 5000), rng.normal(10 + shift * 2, 2, 3000)
    return rng.lognormal(0, 0.8, 5000), rng.lognormal(shift, 0.8, 3000)


def _rollups(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> tuple[Rollup, Rollup]:
    edges = drift.psi_bins(ref, n_bins)
    return binned.rollup(ref, edges), binned.rollup(cur, edges)


def _max_data_range_in_a_bin(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> float:
    edges = drift.psi_bins(ref, n_bins)
    both = np.concatenate([ref, cur])
    index = drift.bin_index(both, edges)
    return float(max(np.ptp(both[index == i]) for i in np.unique(index)))


def test_rollup_known_answer() -> None:
    r = binned.rollup([1.0, 2.0, 5.0, 7.0], [3.0, 6.0])
    np.testing.assert_array_equal(r.counts, [2, 1, 1])
    np.testing.assert_array_equal(r.sums, [3, 5, 7])
    np.testing.assert_array_equal(r.sumsq, [5, 25, 49])
    assert binned.reference_std(r) == pytest.approx(np.std([1.0, 2.0, 5.0, 7.0]))


def test_wasserstein_of_point_masses_at_bin_means_known_answer() -> None:
    # each bin holds one value, so bin means are the data and the approximation is exact
    ref, cur = binned.rollup([1.0, 5.0], [3.0]), binned.rollup([2.0, 6.0], [3.0])
    assert binned.wasserstein_normed(ref, cur) == pytest.approx(1.0 / 2.0)
    assert binned.wasserstein_error_bound(ref, cur) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dist", ["normal", "lognormal"])
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_binned_wasserstein_is_within_its_bound_of_the_exact_value(
    seed: int, dist: str, shift: float
) -> None:
    ref, cur = _pair(seed, dist, shift)
    ref_r, cur_r = _rollups(ref, cur, n_bins=10)
    error = abs(binned.wasserstein_normed(ref_r, cur_r) - drift.wasserstein_normed(ref, cur))
    bound = binned.wasserstein_error_bound(ref_r, cur_r)
    assert error <= bound
    assert bound <= _max_data_range_in_a_bin(ref, cur, 10) / np.std(ref)


@pytest.mark.parametrize("seed", SEEDS)
def test_binned_wasserstein_error_is_far_below_the_bound_in_practice(seed: int) -> None:
    ref, cur = _pair(seed, "normal", 0.3)
    ref_r, cur_r = _rollups(ref, cur, n_bins=20)
    error = abs(binned.wasserstein_normed(ref_r, cur_r) - drift.wasserstein_normed(ref, cur))
    print(
        f"seed {seed}: error {error:.2e}, bound {binned.wasserstein_error_bound(ref_r, cur_r):.2e}"
    )
    assert error < 0.01
    assert error < binned.wasserstein_error_bound(ref_r, cur_r) / 5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dist", ["normal", "lognormal"])
@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_binned_ks_brackets_the_exact_statistic(seed: int, dist: str, shift: float) -> None:
    ref, cur = _pair(seed, dist, shift)
    ref_r, cur_r = _rollups(ref, cur, n_bins=20)
    exact = drift.ks(ref, cur)
    assert (
        binned.ks_statistic(ref_r, cur_r) <= exact.statistic <= binned.ks_upper_bound(ref_r, cur_r)
    )
    assert binned.ks_upper_bound(ref_r, cur_r) <= binned.ks_statistic(ref_r, cur_r) + max(
        ref_r.counts.max() / ref_r.n, cur_r.counts.max() / cur_r.n
    )
    assert binned.ks(ref_r, cur_r).pvalue >= exact.pvalue * (1 - 1e-9)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(3000, 2000), (12_000, 2000)])
def test_binned_ks_p_value_is_scipys_law_when_bins_are_the_data(n_ref: int, n_cur: int) -> None:
    """Exact up to 10,000 rows a side, asymptotic above: what ks_2samp does on the raw data."""
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, n_ref), rng.normal(0.1, 1, n_cur)
    edges = np.unique(np.concatenate([ref, cur]))  # one value per bin: nothing is lost
    ref_r, cur_r = binned.rollup(ref, edges), binned.rollup(cur, edges)
    expected = stats.ks_2samp(ref, cur)
    assert binned.ks(ref_r, cur_r).statistic == pytest.approx(expected.statistic)
    assert binned.ks(ref_r, cur_r).pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_binned_psi_and_jensen_shannon_equal_the_statistics_of_the_binned_raw_data(
    seed: int,
) -> None:
    ref, cur = _pair(seed, "lognormal", 0.2)
    edges = drift.psi_bins(ref, 10)
    ref_r, cur_r = binned.rollup(ref, edges), binned.rollup(cur, edges)
    ref_c, cur_c = drift.bin_counts(ref, edges), drift.bin_counts(cur, edges)
    assert binned.psi(ref_r, cur_r) == pytest.approx(drift.psi(ref_c, cur_c), rel=1e-12)
    assert binned.jensen_shannon(ref_r, cur_r) == pytest.approx(
        drift.jensen_shannon_counts(ref_c, cur_c), rel=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_frozen_bin_jensen_shannon_is_close_to_evidentlys_sturges_bins(seed: int) -> None:
    """Different discretisations of one distance: they agree to a few hundredths."""
    for shift in (0.0, 0.3):
        ref, cur = _pair(seed, "normal", shift)
        ref_r, cur_r = _rollups(ref, cur, n_bins=20)
        exact = drift.jensen_shannon(ref, cur, numeric=True)
        assert binned.jensen_shannon(ref_r, cur_r) == pytest.approx(exact, abs=0.03)


def test_categorical_rollups_give_the_exact_count_statistics() -> None:
    rng = np.random.default_rng(0)
    names = np.array(list("abcdefghij"))
    ref, cur = rng.choice(names, 900), rng.choice(names[:8], 700)
    _, ref_r, cur_r = binned.align_categories(
        dict(zip(*np.unique(ref, return_counts=True), strict=True)),
        dict(zip(*np.unique(cur, return_counts=True), strict=True)),
    )
    _, ref_c, cur_c = drift.category_counts(ref, cur)
    assert binned.chi_square(ref_r, cur_r) == drift.chi_square_two_sample(ref_c, cur_c)
    assert binned.psi(ref_r, cur_r) == drift.psi(ref_c, cur_c)
    assert binned.jensen_shannon(ref_r, cur_r) == drift.jensen_shannon(ref, cur, numeric=False)
    assert binned.z_test(*binned.align_categories({"n": 60, "y": 40}, {"y": 30, "n": 70})[1:]) == (
        drift.z_test_counts([60, 40], [70, 30])
    )


def test_a_rollup_without_sums_has_no_wasserstein() -> None:
    counts_only = Rollup(np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="sums"):
        binned.wasserstein_normed(counts_only, counts_only)
