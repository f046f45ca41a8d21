"""What the estimation job fits once per reference set and applies to every window.

- ``BinaryCbpe``: a binary classifier whose prediction is the positive-class score in [0, 1];
  the score is calibrated on the reference's labels (isotonic where the reference shows it is
  not a probability, ``monitor.learn.calibration``), the class is ``score >= 0.5`` as in the
  performance job, and CBPE (``monitor.stats.estimation``) gives the window's accuracy,
  precision, recall, F1 and ROC AUC.
- ``MulticlassCbpe`` (``monitor.jobs.multiclass``): a classifier that logs its score of every
  class (``probabilities``), binary or multiclass.
- ``Dle``: a regressor; gradient-boosting models of its absolute and squared error, fitted on
  the reference's features and prediction (``monitor.learn.dle``), give MAE and RMSE.

Both read ``RowSample``s (categorical features as ``hashtext`` codes) and also measure the
realized figures on the labelled rows of a sample, so the job can say how far the estimate
was from what the labels showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from monitor.learn.calibration import Calibration, fit_calibration
from monitor.learn.dle import LossModel, fit_loss_model
from monitor.stats import performance as perf
from monitor.stats._arrays import EmptySampleError, FloatArray
from monitor.stats.estimation import (
    Estimate,
    Scored,
    cbpe,
    confusion_metrics,
    counted_confusion,
    point_estimates,
)
from monitor.storage.rowsample import RowSample

THRESHOLD = 0.5
"""A score at or above it predicts the positive class (as ``monitor.jobs.performance``)."""
MIN_REFERENCE_ROWS = 100
"""Labelled reference rows below which nothing is fitted."""
BAND_ROWS = 10_000
"""Rows the band's label draws are made on (the spread scaled to the sample's size)."""
MAX_CATEGORIES = 254
"""Categories a DLE feature keeps (gradient boosting bins at most 255 values, one is missing)."""

BoolArray = npt.NDArray[np.bool_]


class Estimator(Protocol):
    @property
    def method(self) -> str:
        """``cbpe`` or ``dle``."""
        ...

    @property
    def score_classes(self) -> tuple[str, ...]:
        """The classes whose scores (``probabilities``) the samples must carry; () for none."""
        ...

    def usable(self, sample: RowSample) -> BoolArray:
        """Rows the estimator can score (a prediction of the right kind)."""
        ...

    def estimate(self, sample: RowSample) -> dict[str, Estimate]: ...

    def points(self, sample: RowSample) -> dict[str, float]:
        """Point estimates only (no band), for comparing with the realized figures."""
        ...

    def realized(self, sample: RowSample) -> dict[str, float]:
        """The figures the labels of ``sample`` show (every row labelled)."""
        ...

    def labelled(self, sample: RowSample) -> BoolArray: ...


@dataclass(frozen=True)
class PositiveClass:
    """How the positive class reads in a sample: as a number and as the code of its text."""

    number: float | None
    code: float

    def hits(self, sample: RowSample) -> BoolArray:
        hit = sample.label_code == self.code
        if self.number is not None:
            hit |= sample.label == self.number
        return np.asarray(hit)


def has_label(sample: RowSample) -> BoolArray:
    return np.asarray(~np.isnan(sample.label) | ~np.isnan(sample.label_code))


def _scores_ok(sample: RowSample) -> BoolArray:
    s = sample.prediction
    with np.errstate(invalid="ignore"):
        return np.asarray(~np.isnan(s) & (s >= 0.0) & (s <= 1.0))


@dataclass(frozen=True)
class BinaryCbpe:
    calibration: Calibration
    positive: PositiveClass
    reference_rows: int
    method: str = "cbpe"

    @property
    def calibrated(self) -> bool:
        return self.calibration.classes[0].calibrated

    @property
    def score_classes(self) -> tuple[str, ...]:
        return ()

    def usable(self, sample: RowSample) -> BoolArray:
        return _scores_ok(sample)

    def _scored(self, sample: RowSample) -> Scored:
        s = sample.prediction[self.usable(sample)]
        return Scored.of(self.calibration(s), s, (s >= THRESHOLD).astype(np.int64))

    def estimate(self, sample: RowSample) -> dict[str, Estimate]:
        return cbpe(
            self._scored(sample),
            positive=1,
            reference_rows=self.reference_rows,
            band_rows=BAND_ROWS,
        )

    def points(self, sample: RowSample) -> dict[str, float]:
        got = point_estimates(self._scored(sample), positive=1)
        return {k: v for k, v in got.items() if v is not None}

    def labelled(self, sample: RowSample) -> BoolArray:
        return np.asarray(has_label(sample) & self.usable(sample))

    def realized(self, sample: RowSample) -> dict[str, float]:
        hit = self.positive.hits(sample).astype(np.int64)
        s = sample.prediction
        predicted = (s >= THRESHOLD).astype(np.int64)
        out = confusion_metrics(counted_confusion(hit, predicted, 2), positive=1)
        auc = perf.roc_auc(hit, s, positive=1)
        if auc is not None:
            out["roc_auc"] = auc
        return out


def fit_binary(reference: RowSample, positive: PositiveClass) -> BinaryCbpe | None:
    """CBPE for a reference whose labelled rows carry scores in [0, 1] and two label values at
    most; None for another kind of model (text or multiclass predictions) or too few rows."""
    labelled = has_label(reference)
    rows = reference.take(labelled)
    if rows.size < MIN_REFERENCE_ROWS or not _scores_ok(rows).all():
        return None
    values = {(float(a), float(b)) for a, b in zip(rows.label, rows.label_code, strict=True)}
    if len({str(v) for v in values}) > 2:
        return None
    try:
        calibration = fit_calibration(rows.prediction, positive.hits(rows).astype(np.int64))
    except EmptySampleError:  # one class only, or almost: nothing to calibrate against
        return None
    return BinaryCbpe(calibration, positive, rows.size)


@dataclass(frozen=True)
class CategoryCodes:
    """A categorical feature's reference codes, in the order their ordinal is given."""

    known: FloatArray  # sorted hashtext codes
    ordinal: FloatArray  # ordinal of each, by frequency in the reference

    @classmethod
    def of(cls, codes: FloatArray) -> CategoryCodes:
        present = codes[~np.isnan(codes)]
        values, counts = np.unique(present, return_counts=True)
        top = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
        keep = np.sort(values[top])
        rank = {v: i for i, v in enumerate(values[top])}
        return cls(keep, np.array([rank[v] for v in keep], dtype=np.float64))

    def __call__(self, codes: FloatArray) -> FloatArray:
        out = np.full(codes.shape, np.nan)
        if self.known.size == 0:
            return out
        at = np.clip(np.searchsorted(self.known, codes), 0, self.known.size - 1)
        found = self.known[at] == codes
        out[found] = self.ordinal[at[found]]
        return out


def encode(features: FloatArray, categories: tuple[CategoryCodes | None, ...]) -> FloatArray:
    """Categorical columns' hashtext codes as the ordinals gradient boosting takes."""
    x = features.copy()
    for j, codes in enumerate(categories):
        if codes is not None:
            x[:, j] = codes(x[:, j])
    return x


@dataclass(frozen=True)
class Dle:
    loss: LossModel
    categories: tuple[CategoryCodes | None, ...]
    reference_rows: int
    method: str = "dle"

    @property
    def score_classes(self) -> tuple[str, ...]:
        return ()

    def _x(self, sample: RowSample) -> FloatArray:
        return encode(sample.features, self.categories)

    def usable(self, sample: RowSample) -> BoolArray:
        return np.asarray(~np.isnan(sample.prediction))

    def estimate(self, sample: RowSample) -> dict[str, Estimate]:
        rows = sample.take(self.usable(sample))
        return self.loss.estimate(self._x(rows), rows.prediction)

    def points(self, sample: RowSample) -> dict[str, float]:
        return {k: e.value for k, e in self.estimate(sample).items()}

    def labelled(self, sample: RowSample) -> BoolArray:
        return np.asarray(~np.isnan(sample.label) & self.usable(sample))

    def realized(self, sample: RowSample) -> dict[str, float]:
        return {
            "mae": perf.mae(sample.label, sample.prediction),
            "rmse": perf.rmse(sample.label, sample.prediction),
        }


def fit_regression(reference: RowSample) -> Dle | None:
    """DLE on the reference rows that have a numeric prediction and label; None if too few."""
    rows = reference.take(~np.isnan(reference.label) & ~np.isnan(reference.prediction))
    if rows.size < MIN_REFERENCE_ROWS:
        return None
    categories = tuple(
        CategoryCodes.of(rows.features[:, j]) if is_cat else None
        for j, is_cat in enumerate(rows.categorical)
    )
    x = encode(rows.features, categories)
    loss = fit_loss_model(x, rows.prediction, rows.label, categorical=rows.categorical)
    return Dle(loss, categories, rows.size)
