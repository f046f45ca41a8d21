"""The domain classifier: ~0.5 and no alarm on stable data at small n, a clear score and the
right features on a correlation flip that no univariate test sees."""

from __future__ import annotations

import numpy as np
from scipy import stats

from monitor.learn.domain import domain_classifier
from monitor.stats import multivariate


def _correlated(rng: np.random.Generator, n: int, rho: float, d: int = 5) -> np.ndarray:
    cov = np.eye(d)
    cov[0, 1] = cov[1, 0] = rho
    return rng.multivariate_normal(np.zeros(d), cov, n)


def test_no_false_alarm_on_stable_data_at_small_n() -> None:
    scores = []
    for seed in range(15):
        rng = np.random.default_rng(seed)
        score = domain_classifier(_correlated(rng, 100, 0.5), _correlated(rng, 100, 0.5), seed=seed)
        scores.append(score.auc)
        assert not multivariate.domain_verdict(score.auc, score.n_reference, score.n_current)
    assert abs(np.mean(scores) - 0.5) < 0.04


def test_a_correlation_sign_flip_is_caught_where_no_univariate_test_is() -> None:
    rng = np.random.default_rng(6)
    reference, current = _correlated(rng, 1500, 0.8), _correlated(rng, 1500, -0.8)
    assert min(stats.ks_2samp(reference[:, j], current[:, j]).pvalue for j in range(5)) > 0.05
    score = domain_classifier(reference, current, max_rows=1000)
    assert score.n_reference == score.n_current == 1000  # bounded, balanced sample
    assert multivariate.domain_verdict(score.auc, score.n_reference, score.n_current)
    assert score.auc > 0.8
    top = multivariate.top_features(["a", "b", "c", "d", "e"], score.importances, k=2)
    assert {name for name, _ in top} == {"a", "b"}


def test_categorical_codes_are_used_as_categories() -> None:
    rng = np.random.default_rng(2)
    reference = np.column_stack([rng.integers(0, 5, 800), rng.normal(size=800)])
    current = np.column_stack(
        [rng.choice(5, 800, p=[0.6, 0.1, 0.1, 0.1, 0.1]), rng.normal(size=800)]
    )
    score = domain_classifier(reference, current, categorical=[True, False])
    assert multivariate.domain_verdict(score.auc, score.n_reference, score.n_current)
