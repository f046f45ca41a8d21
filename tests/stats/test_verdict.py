"""Verdicts: thresholds and their edges, the sample guard, dataset drift, multiple testing."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.stats import selection, verdict
from monitor.stats.selection import MethodChoice
from tests.stats import evidently_oracle

KS = MethodChoice("ks", 0.05, "pvalue", inclusive=True)
CHI = MethodChoice("chisquare", 0.05, "pvalue", inclusive=False)
WASSERSTEIN = MethodChoice("wasserstein", 0.1, "distance", inclusive=True)


def test_thresholds_compare_as_evidently_does_at_the_edge() -> None:
    assert verdict.drift_verdict(0.05, KS) is True  # KS: p <= threshold
    assert verdict.drift_verdict(0.05, CHI) is False  # chi-square, z-test: p < threshold
    assert verdict.drift_verdict(0.049, CHI) is True
    assert verdict.drift_verdict(0.1, WASSERSTEIN) is True  # distances: score >= threshold
    assert verdict.drift_verdict(0.099, WASSERSTEIN) is False
    assert verdict.drift_verdict(0.1, MethodChoice("x", 0.1, "distance", inclusive=False)) is False


def _pair(seed: int, method: str) -> tuple[np.ndarray, np.ndarray, bool]:
    rng = np.random.default_rng(seed)
    shift = rng.uniform(0, 0.25)
    if method == "ztest":
        return rng.random(600) < 0.3, rng.random(400) < 0.3 + shift / 2, False
    if method == "jensenshannon":
        names = np.array(list("abcdefgh"))
        p = np.exp(shift * 4 * np.arange(8) / 8)
        return rng.choice(names, 1500), rng.choice(names, 800, p=p / p.sum()), False
    return rng.normal(0, 1, 1500), rng.normal(shift, 1, 800), True


@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon", "ztest"])
def test_verdicts_equal_evidentlys_over_random_shifts(method: str) -> None:
    agree = []
    for seed in range(25):
        ref, cur, numeric = _pair(seed, method)
        choice = selection.choose_method(
            numeric=numeric, n_unique=100, n_ref=ref.size, method=method
        )
        score = selection.METHODS[method].exact(ref, cur, numeric).decisive(choice.kind)
        agree.append(
            verdict.drift_verdict(score, choice)
            == evidently_oracle.run(method, ref, cur, numeric=numeric)[1]
        )
    assert all(agree)


def test_minimum_sample_guard_withholds_the_verdict() -> None:
    assert verdict.guarded_verdict(0.0, KS, n_ref=5000, n_cur=99, min_samples=100) is None
    assert verdict.guarded_verdict(0.0, KS, n_ref=99, n_cur=5000, min_samples=100) is None
    assert verdict.guarded_verdict(0.0, KS, n_ref=100, n_cur=100, min_samples=100) is True
    assert verdict.guarded_verdict(0.9, KS, n_ref=100, n_cur=100) is False


def test_drift_share_counts_only_features_with_a_verdict() -> None:
    assert verdict.drift_share([True, False, None, True, False]) == 0.5
    assert verdict.drift_share([None, None]) is None
    assert verdict.dataset_drift(0.5) is True  # share >= 0.5, as Evidently
    assert verdict.dataset_drift(0.49) is False
    assert verdict.dataset_drift(0.3, threshold=0.25) is True
    assert verdict.dataset_drift(None) is None


PVALUES = [0.01, 0.04, 0.03, 0.20, 0.005]


def test_bonferroni_known_answer() -> None:
    np.testing.assert_allclose(verdict.bonferroni(PVALUES), [0.05, 0.20, 0.15, 1.0, 0.025])


def test_benjamini_hochberg_known_answer() -> None:
    # sorted 0.005 0.01 0.03 0.04 0.20 times 5/i: 0.025 0.025 0.05 0.05 0.20, already monotone
    np.testing.assert_allclose(
        verdict.benjamini_hochberg(PVALUES), [0.025, 0.05, 0.05, 0.20, 0.025]
    )
    # monotone step: 0.04 * 3/2 = 0.06 exceeds 0.045 * 3/3, so it takes 0.045
    np.testing.assert_allclose(
        verdict.benjamini_hochberg([0.01, 0.04, 0.045]), [0.03, 0.045, 0.045]
    )


@pytest.mark.parametrize("seed", range(5))
def test_corrections_equal_statsmodels(seed: int) -> None:
    # statsmodels is not among the dev extras; it is only an oracle here
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = np.random.default_rng(seed).uniform(0, 0.2, 30) ** 2
    np.testing.assert_allclose(verdict.bonferroni(p), multipletests(p, method="bonferroni")[1])
    np.testing.assert_allclose(verdict.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_correction_touches_only_p_value_methods() -> None:
    choices = [KS, WASSERSTEIN, CHI, WASSERSTEIN]
    values = [0.02, 0.3, 0.01, 0.05]
    assert verdict.correct_pvalues(values, choices, "none") == values
    assert verdict.correct_pvalues(values, choices, "bonferroni") == pytest.approx(
        [0.04, 0.3, 0.02, 0.05]
    )
    assert verdict.correct_pvalues(values, choices, "fdr") == pytest.approx([0.02, 0.3, 0.02, 0.05])
    assert verdict.correct_pvalues([0.3], [WASSERSTEIN], "bonferroni") == [0.3]
