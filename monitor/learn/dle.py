"""Direct loss estimation (DLE) for regression models, fitted on the labelled reference.

Two gradient-boosting regressors learn, from the features and the model's prediction, the
absolute and the squared error of each reference row. On a window without labels their
predictions average to the estimated MAE and MSE (NannyML's DLE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingRegressor

from monitor.stats._arrays import EmptySampleError, FloatArray
from monitor.stats.estimation import Estimate, dle_estimates

MIN_ROWS = 50


def _inputs(features: npt.ArrayLike, predictions: npt.ArrayLike) -> FloatArray:
    x = np.asarray(features, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64).reshape(-1, 1)
    if x.ndim != 2 or x.shape[0] != p.shape[0]:
        raise ValueError(f"features {x.shape} do not match {p.shape[0]} predictions")
    return np.hstack([x, p])


def _regressor(categorical: Sequence[bool], seed: int) -> Any:
    mask = [*categorical, False]  # the prediction is numeric
    return HistGradientBoostingRegressor(
        max_iter=100, categorical_features=mask if any(mask) else None, random_state=seed
    )


@dataclass(frozen=True, slots=True)
class LossModel:
    """Fitted models of |error| and error², and the reference spread of both."""

    absolute: Any
    squared: Any
    reference_abs_std: float
    reference_squared_std: float

    def estimate(self, features: npt.ArrayLike, predictions: npt.ArrayLike) -> dict[str, Estimate]:
        x = _inputs(features, predictions)
        if x.shape[0] == 0:
            raise EmptySampleError("no rows to estimate")
        return dle_estimates(
            self.absolute.predict(x),
            self.squared.predict(x),
            reference_abs_std=self.reference_abs_std,
            reference_squared_std=self.reference_squared_std,
        )


def fit_loss_model(
    features: npt.ArrayLike,
    predictions: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    categorical: Sequence[bool] = (),
    seed: int = 0,
) -> LossModel:
    """Fit the two loss models on reference rows (categorical columns as integer codes)."""
    x = _inputs(features, predictions)
    error = (
        np.asarray(predictions, dtype=np.float64).ravel()
        - np.asarray(targets, dtype=np.float64).ravel()
    )
    if x.shape[0] < MIN_ROWS or error.size != x.shape[0]:
        raise EmptySampleError(f"DLE needs at least {MIN_ROWS} labelled reference rows")
    mask = list(categorical) or [False] * (x.shape[1] - 1)
    absolute, squared = np.abs(error), error * error
    return LossModel(
        _regressor(mask, seed).fit(x, absolute),
        _regressor(mask, seed).fit(x, squared),
        float(np.std(absolute, ddof=1)),
        float(np.std(squared, ddof=1)),
    )
