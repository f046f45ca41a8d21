"""CBPE and DLE arithmetic: hand-computed answers, sklearn as the oracle, band coverage."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from monitor.stats import estimation


def test_expected_accuracy_known_answer() -> None:
    # row 1: predicted 1 with p(1) = 0.9 -> right 0.9; row 2: predicted 0 with p(1) = 0.2 -> 0.8
    confusion = estimation.expected_confusion([0.9, 0.2], [1, 0])
    assert confusion == pytest.approx(np.array([[0.8, 0.1], [0.2, 0.9]]))
    out = estimation.confusion_metrics(confusion, positive=1)
    assert out["accuracy"] == pytest.approx(0.85)
    assert out["precision"] == pytest.approx(0.9 / 1.0)
    assert out["recall"] == pytest.approx(0.9 / 1.1)
    assert out["f1"] == pytest.approx(1.8 / (1.8 + 0.1 + 0.2))


def test_certain_probabilities_give_the_counted_metrics() -> None:
    rng = np.random.default_rng(1)
    labels, predicted = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    proba = np.eye(3)[labels]
    out = estimation.confusion_metrics(
        estimation.expected_confusion(proba, predicted), positive=None
    )
    assert out["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    for name, fn in [
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ]:
        assert out[name] == pytest.approx(fn(labels, predicted, average="macro"))


def test_expected_auc_equals_sklearn_on_rows_split_by_probability() -> None:
    rng = np.random.default_rng(2)
    scores = np.round(rng.random(300), 2)  # ties on purpose
    p = np.clip(scores + rng.normal(0, 0.1, 300), 0, 1)
    weighted = metrics.roc_auc_score(
        np.r_[np.ones(300), np.zeros(300)], np.r_[scores, scores], sample_weight=np.r_[p, 1 - p]
    )
    assert estimation.expected_roc_auc(scores, p) == pytest.approx(weighted)


def test_expected_auc_of_certain_probabilities_is_the_realized_auc() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(labels * 0.3 + rng.random(200), 1)
    realized = metrics.roc_auc_score(labels, scores)
    assert estimation.expected_roc_auc(scores, labels.astype(float)) == pytest.approx(realized)
    assert estimation.expected_roc_auc(scores, np.zeros(200)) is None


def test_accuracy_band_is_the_poisson_binomial_spread() -> None:
    rng = np.random.default_rng(4)
    p = rng.random(2000)
    predicted = (p >= 0.5).astype(int)
    scored = estimation.Scored.of(p, p, predicted)
    band = estimation.cbpe(scored, positive=1, draws=400)["accuracy"]
    right = np.where(predicted == 1, p, 1 - p)
    exact_sd = np.sqrt(np.sum(right * (1 - right))) / p.size
    assert band.value == pytest.approx(right.mean())
    assert band.std == pytest.approx(exact_sd, rel=0.15)
    assert band.lower == pytest.approx(band.value - 3 * band.std)


def _calibrated_window(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, ...]:
    scores = rng.beta(2 + shift, 2, n)  # scores are the true probabilities
    labels = (rng.random(n) < scores).astype(int)
    return scores, labels


def test_binary_bands_cover_the_realized_metrics_under_covariate_shift() -> None:
    misses = dict.fromkeys(estimation.CLASSIFICATION_METRICS, 0)
    seeds = 40
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        scores, labels = _calibrated_window(rng, 1000, shift=3.0)
        predicted = (scores >= 0.5).astype(int)
        bands = estimation.cbpe(
            estimation.Scored.of(scores, scores, predicted), positive=1, draws=100
        )
        realized = {
            "accuracy": metrics.accuracy_score(labels, predicted),
            "precision": metrics.precision_score(labels, predicted),
            "recall": metrics.recall_score(labels, predicted),
            "f1": metrics.f1_score(labels, predicted),
            "roc_auc": metrics.roc_auc_score(labels, scores),
        }
        for name, value in realized.items():
            misses[name] += not bands[name].lower <= value <= bands[name].upper
    assert max(misses.values()) <= 1, misses  # 3-sigma bands: ~0.3% misses expected


def test_multiclass_bands_cover_the_realized_macro_metrics() -> None:
    misses = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        proba = rng.dirichlet([0.6, 0.6, 0.6], 800)
        labels = np.array([rng.choice(3, p=row) for row in proba])
        predicted = proba.argmax(axis=1)
        bands = estimation.cbpe(
            estimation.Scored.of(proba, proba, predicted), positive=None, draws=100
        )
        realized = {
            "accuracy": metrics.accuracy_score(labels, predicted),
            "f1": metrics.f1_score(labels, predicted, average="macro"),
            "roc_auc": metrics.roc_auc_score(labels, proba, multi_class="ovr", average="macro"),
        }
        misses += sum(not bands[m].lower <= v <= bands[m].upper for m, v in realized.items())
    assert misses <= 1


def test_dle_estimates_and_delta_method_band() -> None:
    out = estimation.dle_estimates(
        [1.0, 2.0, 3.0, 2.0], [1.0, 4.0, 9.0, 4.0], reference_abs_std=2.0, reference_squared_std=4.0
    )
    assert out["mae"].value == pytest.approx(2.0)
    assert out["mae"].std == pytest.approx(1.0)  # 2 / sqrt(4)
    assert out["rmse"].value == pytest.approx(np.sqrt(4.5))
    assert out["rmse"].std == pytest.approx(2.0 / (2 * np.sqrt(4.5)))
    assert out["mae"].lower == 0.0  # clipped at the metric's floor


def test_calibration_error_of_calibrated_and_overconfident_scores() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(20000)
    hit = rng.random(20000) < p
    assert estimation.expected_calibration_error(p, hit) < 0.02
    assert estimation.expected_calibration_error(np.sqrt(p), hit) > 0.1
    assert estimation.expected_calibration_error([0.5, 0.5], [1, 0], bins=1) == 0.0


def test_estimate_errors_are_realized_minus_estimate() -> None:
    errors = estimation.estimate_errors({"accuracy": 0.9, "f1": 0.8}, {"accuracy": 0.85})
    assert errors == {"accuracy": pytest.approx(-0.05)}


def test_null_calibration_error_predicts_what_calibrated_scores_show() -> None:
    rng = np.random.default_rng(6)
    observed = []
    for _ in range(50):
        p = rng.random(2000)
        observed.append(estimation.expected_calibration_error(p, rng.random(2000) < p))
    expected = estimation.null_calibration_error(rng.random(2000))
    assert np.mean(observed) == pytest.approx(expected, rel=0.15)


def test_band_drawn_on_a_subset_matches_the_full_draws() -> None:
    """The spread of realized metrics falls as 1 / sqrt(n): drawing labels for 5,000 of 40,000
    rows and scaling gives the same band to within the draws' own noise (~10%)."""
    from monitor.stats.estimation import Scored, cbpe

    rng = np.random.default_rng(12)
    score = rng.beta(2, 2, 40_000)
    scored = Scored.of(score, score, (score >= 0.5).astype(np.int64))
    full = cbpe(scored, positive=1, draws=300)
    fast = cbpe(scored, positive=1, draws=300, band_rows=5_000)
    for name, estimate in full.items():
        assert fast[name].value == estimate.value
        assert fast[name].std == pytest.approx(estimate.std, rel=0.15), name
