"""Exact drift statistics: hand-computed answers, then scipy and Evidently 0.7 on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from monitor.stats import drift
from monitor.stats._arrays import EmptySampleError
from tests.stats import evidently_oracle

REL = 1e-6
SEEDS = range(5)


def test_ks_of_separated_samples_has_d_1_and_exact_p_2_over_20() -> None:
    result = drift.ks([1, 2, 3], [4, 5, 6])
    assert result.statistic == 1.0
    # the two orderings with all of one sample first, out of C(6, 3) = 20
    assert result.pvalue == pytest.approx(2 / 20)


def test_wasserstein_normed_of_a_unit_shift_is_one_over_the_population_std() -> None:
    ref = [0.0, 1.0, 2.0, 3.0]
    assert drift.wasserstein_normed(ref, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(1 / math.sqrt(1.25))


def test_wasserstein_normed_floors_a_constant_reference_std_at_0_001() -> None:
    assert drift.wasserstein_normed([5.0] * 3, [6.0] * 3) == pytest.approx(1000.0)


def test_chi_square_two_sample_on_a_2x2_table() -> None:
    # expected 15 in every cell: 4 * 5^2 / 15 = 20/3; one degree of freedom
    result = drift.chi_square_two_sample([10, 20], [20, 10])
    assert result.statistic == pytest.approx(20 / 3)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(20 / 3 / 2)))


def test_chi_square_two_sample_drops_categories_absent_from_both() -> None:
    assert drift.chi_square_two_sample([10, 0, 20], [20, 0, 10]) == drift.chi_square_two_sample(
        [10, 20], [20, 10]
    )


def test_chi_square_two_sample_with_a_category_new_in_current() -> None:
    # expected per row 10, 15, 5: 2 * (25/15 + 25/5) = 40/3 on 2 df, p = exp(-x/2)
    result = drift.chi_square_two_sample([10, 20, 0], [10, 10, 10])
    assert result.statistic == pytest.approx(40 / 3)
    assert result.pvalue == pytest.approx(math.exp(-20 / 3))


def test_chi_square_two_sample_of_one_category_is_no_evidence() -> None:
    assert drift.chi_square_two_sample([7, 0], [3, 0]) == drift.TestResult(0.0, 1.0)


def test_z_test_counts_known_answer_and_chi_square_equals_z_squared() -> None:
    # share of rows not in the first category: 0.5 vs 0.3, pooled 0.4
    z = 0.2 / math.sqrt(0.4 * 0.6 * (1 / 100 + 1 / 100))
    result = drift.z_test_counts([50, 50], [70, 30])
    assert result.statistic == pytest.approx(z)
    assert result.pvalue == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert drift.chi_square_two_sample([50, 50], [70, 30]).statistic == pytest.approx(z * z)


def test_z_test_of_one_shared_value_is_no_evidence() -> None:
    assert drift.z_test_proportions(["a"] * 5, ["a"] * 7) == drift.TestResult(0.0, 1.0)


def test_jensen_shannon_known_answers() -> None:
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4)
    kl_p = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_q = math.log(1 / 0.75)
    assert drift.jensen_shannon_counts([1, 1], [1, 0]) == pytest.approx(
        math.sqrt((kl_p + kl_q) / 2)
    )
    assert drift.jensen_shannon_counts([3, 0], [0, 5]) == pytest.approx(math.sqrt(math.log(2)))
    assert drift.jensen_shannon_counts([2, 6], [1, 3]) == pytest.approx(0.0, abs=1e-12)


def test_psi_known_answer() -> None:
    expected = 0.25 * math.log(0.5 / 0.25) + 0.25 * math.log(0.75 / 0.5)
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(expected)


def test_psi_gives_an_empty_bin_a_proportion_of_1e_4() -> None:
    expected = 2 * 0.1 * math.log(0.5 / 0.4) + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
    assert drift.psi([50, 50, 0], [40, 40, 20]) == pytest.approx(expected)


def test_psi_bins_are_interior_reference_quantiles() -> None:
    # linear quantiles of 1..100 at 1/4, 1/2, 3/4
    edges = drift.psi_bins(np.arange(1, 101), n_bins=4)
    np.testing.assert_allclose(edges, [25.75, 50.5, 75.25])


def test_psi_bins_deduplicate_tied_quantiles() -> None:
    ref = np.r_[np.zeros(90), np.arange(1, 11)]
    np.testing.assert_allclose(drift.psi_bins(ref, n_bins=10), [0.0, 0.1])


def test_bin_counts_put_an_edge_value_in_the_upper_bin_and_keep_outliers() -> None:
    edges = [25.75, 50.5, 75.25]
    np.testing.assert_array_equal(drift.bin_counts([-1e9, 25.75, 60, 1e9], edges), [1, 1, 1, 1])


def test_empty_samples_are_refused() -> None:
    with pytest.raises(EmptySampleError):
        drift.ks([], [1.0])
    with pytest.raises(EmptySampleError):
        drift.psi([0, 0], [1, 1])


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_statistics_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(0, 1, 400), rng.normal(0.2, 1.1, 300)
    expected = stats.ks_2samp(ref, cur)
    assert drift.ks(ref, cur) == drift.TestResult(expected.statistic, expected.pvalue)
    w1 = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert drift.wasserstein_normed(ref, cur) == pytest.approx(w1, rel=REL)
    table = np.array([rng.multinomial(500, [0.2, 0.3, 0.5]), rng.multinomial(700, [0.25] * 4)[:3]])
    chi = stats.chi2_contingency(table, correction=False)
    result = drift.chi_square_two_sample(*table)
    assert result.statistic == pytest.approx(chi.statistic, rel=REL)
    assert result.pvalue == pytest.approx(chi.pvalue, rel=REL)


def _numeric_pair(seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(0, 0.6, 800), rng.lognormal(shift, 0.6, 600)


def _categorical_pair(seed: int, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum()
    tilted = base * np.exp(tilt * np.arange(10) / 10)
    names = np.array([f"c{i}" for i in range(10)])
    return rng.choice(names, 700, p=base), rng.choice(names, 500, p=tilted / tilted.sum())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shift", [0.0, 0.15])
def test_numeric_statistics_equal_evidently(seed: int, shift: float) -> None:
    ref, cur = _numeric_pair(seed, shift)
    assert drift.ks(ref, cur).pvalue == pytest.approx(
        evidently_oracle.run("ks", ref, cur, numeric=True)[0], rel=REL
    )
    assert drift.wasserstein_normed(ref, cur) == pytest.approx(
        evidently_oracle.run("wasserstein", ref, cur, numeric=True)[0], rel=REL
    )
    assert drift.jensen_shannon(ref, cur, numeric=True) == pytest.approx(
        evidently_oracle.run("jensenshannon", ref, cur, numeric=True)[0], rel=REL
    )
    # Evidently's raw-sample PSI uses the same shared histogram as its Jensen-Shannon
    assert drift.psi(*drift.shared_histogram(ref, cur, numeric=True)) == pytest.approx(
        evidently_oracle.run("psi", ref, cur, numeric=True)[0], rel=REL
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_numeric_column_with_few_values_is_counted_per_value_like_evidently(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.poisson(3.0, 900).astype(float), rng.poisson(3.3, 600).astype(float)
    assert drift.jensen_shannon(ref, cur, numeric=True) == pytest.approx(
        evidently_oracle.run("jensenshannon", ref, cur, numeric=True)[0], rel=REL
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tilt", [0.0, 0.5])
def test_categorical_statistics_equal_evidently(seed: int, tilt: float) -> None:
    ref, cur = _categorical_pair(seed, tilt)
    cur = cur[cur != "c9"]  # a category missing from current exercises PSI's empty-bin floor
    assert drift.jensen_shannon(ref, cur, numeric=False) == pytest.approx(
        evidently_oracle.run("jensenshannon", ref, cur, numeric=False)[0], rel=REL
    )
    _, ref_counts, cur_counts = drift.category_counts(ref, cur)
    assert drift.psi(ref_counts, cur_counts) == pytest.approx(
        evidently_oracle.run("psi", ref, cur, numeric=False)[0], rel=REL
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p_cur", [0.3, 0.36])
def test_z_test_equals_evidently(seed: int, p_cur: float) -> None:
    rng = np.random.default_rng(seed)
    ref = np.where(rng.random(800) < 0.3, "yes", "no")
    cur = np.where(rng.random(600) < p_cur, "yes", "no")
    assert drift.z_test_proportions(ref, cur).pvalue == pytest.approx(
        evidently_oracle.run("ztest", ref, cur, numeric=False)[0], rel=REL
    )


def test_evidently_chisquare_is_a_goodness_of_fit_test_on_reference_proportions() -> None:
    """The premise of our departure: Evidently's p-value is scipy's one-sample ``chisquare`` of
    current counts against reference counts scaled to the current total."""
    ref, cur = _categorical_pair(1, 0.0)
    _, ref_counts, cur_counts = drift.category_counts(ref, cur)
    goodness_of_fit = stats.chisquare(cur_counts, ref_counts * cur_counts.sum() / ref_counts.sum())
    evidently_p = evidently_oracle.run("chisquare", ref, cur, numeric=False)[0]
    assert evidently_p == pytest.approx(goodness_of_fit.pvalue, rel=REL)
    assert drift.chi_square_two_sample(ref_counts, cur_counts).pvalue > evidently_p
