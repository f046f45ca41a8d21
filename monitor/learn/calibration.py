"""Calibration of classifier scores on the reference (CBPE's first step).

A score is used as a probability unless the reference says it is not one: isotonic
calibration is used when the raw scores' expected calibration error is more than twice what
calibrated scores show by chance at this reference size, and isotonic calibration fitted
out-of-fold does better (NannyML compares the same two errors, without the noise floor, so
it also recalibrates scores that are already probabilities).
Multiclass scores are calibrated one-vs-rest and the rows renormalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from monitor.stats._arrays import EmptySampleError, FloatArray
from monitor.stats.estimation import expected_calibration_error, null_calibration_error

FOLDS = 5
MIN_CLASS_ROWS = FOLDS
NOISE_FACTOR = 2.0


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")


def _out_of_fold(scores: FloatArray, hit: FloatArray, seed: int) -> FloatArray:
    """Each reference row calibrated by isotonic fitted on the other folds."""
    out = np.empty_like(scores)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(scores.reshape(-1, 1), hit):
        out[test] = _isotonic().fit(scores[train], hit[train]).predict(scores[test])
    return out


@dataclass(frozen=True, slots=True)
class ClassCalibration:
    """One class's map from score to probability: isotonic, or the identity."""

    isotonic: IsotonicRegression | None
    raw_ece: float
    calibrated_ece: float

    def __call__(self, scores: npt.ArrayLike) -> FloatArray:
        s = np.asarray(scores, dtype=np.float64).ravel()
        if self.isotonic is None:
            return np.clip(s, 0.0, 1.0)
        return np.asarray(self.isotonic.predict(s), dtype=np.float64)

    @property
    def calibrated(self) -> bool:
        return self.isotonic is not None


def fit_class(scores: npt.ArrayLike, hit: npt.ArrayLike, *, seed: int = 0) -> ClassCalibration:
    """Calibrate one score column against whether each reference row is of that class."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(hit, dtype=np.float64).ravel()
    if s.size != y.size or s.size == 0:
        raise EmptySampleError("no scored, labelled reference rows")
    positives = int(y.sum())
    if min(positives, y.size - positives) < MIN_CLASS_ROWS:
        raise EmptySampleError("the reference needs rows of each class to calibrate")
    raw = expected_calibration_error(np.clip(s, 0.0, 1.0), y)
    cross = expected_calibration_error(_out_of_fold(s, y, seed), y)
    noise = NOISE_FACTOR * null_calibration_error(np.clip(s, 0.0, 1.0))
    if raw <= noise or cross >= raw:
        return ClassCalibration(None, raw, cross)
    return ClassCalibration(_isotonic().fit(s, y), raw, cross)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Score columns (n, K) to probabilities (n, K); K = 1 means a binary positive score."""

    classes: tuple[ClassCalibration, ...]

    def __call__(self, scores: npt.ArrayLike) -> FloatArray:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 1:
            s = s.reshape(-1, 1)
        if s.shape[1] != len(self.classes):
            raise ValueError(f"calibrated {len(self.classes)} score columns, got {s.shape[1]}")
        p = np.column_stack([c(s[:, k]) for k, c in enumerate(self.classes)])
        if p.shape[1] == 1:
            return np.asarray(p[:, 0], dtype=np.float64)
        total = p.sum(axis=1, keepdims=True)
        return np.asarray(
            np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
        )


def fit_calibration(scores: npt.ArrayLike, labels: npt.ArrayLike, *, seed: int = 0) -> Calibration:
    """``scores`` (n,) positive-class scores with 0/1 ``labels``, or (n, K) with class indices."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64).ravel()
    columns: Sequence[FloatArray] = [s] if s.ndim == 1 else [s[:, k] for k in range(s.shape[1])]
    if s.ndim == 1:
        return Calibration((fit_class(s, y == 1, seed=seed),))
    return Calibration(tuple(fit_class(c, y == k, seed=seed) for k, c in enumerate(columns)))
