"""Calibration on the reference: left alone where scores are probabilities, isotonic where not,
and CBPE on top of it estimates a shifted window within its band."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from monitor.learn.calibration import fit_calibration
from monitor.stats import estimation
from monitor.stats._arrays import EmptySampleError


def test_calibrated_scores_are_used_as_they_are() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(5000)
    calibration = fit_calibration(p, (rng.random(5000) < p).astype(int))
    assert not calibration.classes[0].calibrated
    assert calibration(p) == pytest.approx(p)


def test_overconfident_scores_are_calibrated_and_cbpe_then_hits_the_realized_accuracy() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(5000)
    scores = np.sqrt(truth)  # the model claims more than it knows
    calibration = fit_calibration(scores, (rng.random(5000) < truth).astype(int))
    assert calibration.classes[0].calibrated
    assert calibration.classes[0].calibrated_ece < calibration.classes[0].raw_ece

    shifted = rng.beta(0.7, 0.7, 3000)  # the window has more extreme rows than the reference
    labels = (rng.random(3000) < shifted).astype(int)
    window_scores = np.sqrt(shifted)
    predicted = (window_scores >= 0.5).astype(int)
    calibrated = estimation.cbpe(
        estimation.Scored.of(calibration(window_scores), window_scores, predicted),
        positive=1,
        reference_rows=5000,
    )
    raw = estimation.point_estimates(
        estimation.Scored.of(window_scores, window_scores, predicted), positive=1
    )
    realized = metrics.accuracy_score(labels, predicted)
    assert calibrated["accuracy"].lower <= realized <= calibrated["accuracy"].upper
    assert abs(raw["accuracy"] - realized) > 3 * calibrated["accuracy"].std  # raw is off


def test_multiclass_calibration_rows_sum_to_one() -> None:
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 3000)
    labels = np.array([rng.choice(3, p=row) for row in proba**2 / (proba**2).sum(1, keepdims=True)])
    calibration = fit_calibration(proba, labels)
    assert calibration(proba).sum(axis=1) == pytest.approx(np.ones(3000))


def test_a_reference_without_both_classes_cannot_calibrate() -> None:
    with pytest.raises(EmptySampleError, match="each class"):
        fit_calibration(np.full(100, 0.3), np.zeros(100, dtype=int))
