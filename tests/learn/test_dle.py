"""Direct loss estimation: the window's MAE and RMSE from features and predictions alone."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.learn.dle import fit_loss_model
from monitor.stats._arrays import EmptySampleError


def _rows(rng: np.random.Generator, n: int, centre: float) -> tuple[np.ndarray, ...]:
    x = np.column_stack([rng.normal(0, 1, n), rng.normal(centre, 1, n)])
    noise_sd = 0.5 + np.abs(x[:, 1])  # the model is worse where x1 is far from 0
    target = x[:, 0] + rng.normal(0, 1, n) * noise_sd
    return x, x[:, 0], target  # features, prediction (the conditional mean), target


def test_dle_follows_the_error_into_a_shifted_window() -> None:
    rng = np.random.default_rng(0)
    model = fit_loss_model(*_rows(rng, 5000, centre=0.0))
    x, prediction, target = _rows(rng, 2000, centre=1.5)
    estimate = model.estimate(x, prediction)
    realized_mae = float(np.mean(np.abs(prediction - target)))
    realized_rmse = float(np.sqrt(np.mean((prediction - target) ** 2)))
    reference_mae = 0.8 * (0.5 + 0.8)  # E|N(0,1)| E(0.5 + |x1|) with x1 ~ N(0, 1)
    assert realized_mae > reference_mae * 1.5  # the shift really hurts
    assert estimate["mae"].lower <= realized_mae <= estimate["mae"].upper
    assert estimate["rmse"].lower <= realized_rmse <= estimate["rmse"].upper
    assert estimate["mae"].value == pytest.approx(realized_mae, rel=0.1)


def test_dle_needs_enough_labelled_reference_rows() -> None:
    with pytest.raises(EmptySampleError, match="at least"):
        fit_loss_model(np.zeros((10, 2)), np.zeros(10), np.zeros(10))
