"""PCA reconstruction error and the domain-classifier threshold: known answers, no false alarms
on stable data at small n, and a correlation flip that no single feature shows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.stats import multivariate


def _correlated(rng: np.random.Generator, n: int, rho: float, d: int = 4) -> np.ndarray:
    cov = np.eye(d)
    cov[0, 1] = cov[1, 0] = rho
    return rng.multivariate_normal(np.zeros(d), cov, n)


def test_pca_reconstruction_known_answer() -> None:
    # standardised points on the line x2 = x1: one component along (1, 1) / sqrt(2)
    pca = multivariate.fit_pca([[-1.0, -1.0], [1.0, 1.0]], variance=0.65)
    assert pca.components.shape == (1, 2)
    # (1, -1) is orthogonal to the component: its whole length sqrt(2) is error
    assert multivariate.reconstruction_errors(pca, [[1.0, -1.0], [2.0, 2.0]]) == pytest.approx(
        [np.sqrt(2), 0.0]
    )


def test_pca_keeps_enough_components_for_the_variance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 10))
    assert multivariate.fit_pca(x, variance=0.65).components.shape[0] in (6, 7)
    assert multivariate.fit_pca(x, variance=1.0).components.shape[0] == 10


def test_missing_values_sit_at_the_reference_mean() -> None:
    pca = multivariate.fit_pca([[0.0, 0.0], [2.0, 2.0]])
    assert multivariate.reconstruction_errors(pca, [[np.nan, np.nan]]) == pytest.approx([0.0])


def test_reconstruction_band_never_alarms_on_stable_small_windows() -> None:
    rng = np.random.default_rng(1)
    model = multivariate.fit_reconstruction(_correlated(rng, 1000, 0.8, d=8))
    alarms = 0
    for _ in range(300):
        window = _correlated(rng, 50, 0.8, d=8)
        value = multivariate.window_reconstruction_error(model, window)
        alarms += multivariate.outside_band(value, multivariate.reconstruction_band(model, 50))
    assert alarms <= 3  # 3-sigma band: ~1 in 370 expected


def test_a_correlation_sign_flip_is_caught_by_pca_but_by_no_univariate_test() -> None:
    rng = np.random.default_rng(1)
    reference, current = _correlated(rng, 2000, 0.8), _correlated(rng, 1000, -0.8)
    # every marginal is N(0, 1) on both sides: KS sees nothing, even uncorrected
    assert min(stats.ks_2samp(reference[:, j], current[:, j]).pvalue for j in range(4)) > 0.05
    model = multivariate.fit_reconstruction(reference)
    value = multivariate.window_reconstruction_error(model, current)
    band = multivariate.reconstruction_band(model, current.shape[0])
    assert value > band[1]


def test_domain_threshold_is_wide_at_small_n_and_floored_at_large_n() -> None:
    assert multivariate.null_auc_std(200, 200) == pytest.approx(np.sqrt(401 / (12 * 200 * 200)))
    assert multivariate.domain_auc_threshold(200, 200) == pytest.approx(
        0.5 + 4 * np.sqrt(401 / 480000)
    )
    assert multivariate.domain_auc_threshold(5000, 5000) == multivariate.DOMAIN_AUC_FLOOR
    assert multivariate.domain_verdict(0.7, 200, 200)
    assert not multivariate.domain_verdict(0.6, 200, 200)


def test_top_features_are_the_largest_positive_importances() -> None:
    names = ["a", "b", "c", "d"]
    assert multivariate.top_features(names, [0.1, -0.2, 0.3, 0.0], k=3) == [
        ("c", 0.3),
        ("a", 0.1),
    ]
