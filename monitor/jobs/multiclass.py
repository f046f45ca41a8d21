"""CBPE for a classifier that logs its score of every class (``probabilities``).

The reference's classes are the names its rows give scores for; a row's predicted class is its
``prediction`` read as one of those names (the class with the highest score when the row has
no prediction), and its true class the label read the same way. Each class's score is
calibrated one-vs-rest on the reference and the rows renormalised
(``monitor.learn.calibration``); CBPE (``monitor.stats.estimation``) then gives accuracy and
precision, recall, F1 and one-vs-rest ROC AUC, for ``positive_class`` where it is configured
(and, for two classes, for class "1" as the performance job does), macro-averaged otherwise.

A row is scored only when it has a score for every class and its prediction is one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.jobs.estimators import BAND_ROWS, MIN_REFERENCE_ROWS, BoolArray, has_label
from monitor.learn.calibration import Calibration, fit_calibration
from monitor.stats import performance as perf
from monitor.stats._arrays import EmptySampleError, FloatArray, IntArray
from monitor.stats.estimation import (
    Estimate,
    Scored,
    cbpe,
    confusion_metrics,
    counted_confusion,
    point_estimates,
)
from monitor.storage.rowsample import RowSample

BINARY_POSITIVE = "1"
"""The positive class of a two-class model with no ``positive_class`` (as the performance job)."""


def _number(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return float("nan")


@dataclass(frozen=True)
class ClassNames:
    """The classes a model scores, as a sample spells a value: its number where the name is
    one, and the ``hashtext`` code of its text."""

    names: tuple[str, ...]
    numbers: FloatArray
    codes: FloatArray

    @classmethod
    def of(cls, names: Sequence[str], codes: npt.ArrayLike) -> ClassNames:
        numbers = np.array([_number(n) for n in names], dtype=np.float64)
        return cls(tuple(names), numbers, np.asarray(codes, dtype=np.float64))

    def index(self, number: FloatArray, code: FloatArray) -> IntArray:
        """Each value's class index; -1 for a value that is none of the classes (or missing)."""
        out = np.full(number.shape, -1, dtype=np.int64)
        for k in range(len(self.names)):
            hit = (code == self.codes[k]) | (number == self.numbers[k])
            out[hit & (out < 0)] = k
        return out

    def positive(self, configured: str | None) -> int | None:
        """The index metrics are given for; None = macro-average over the classes."""
        name = configured or (BINARY_POSITIVE if len(self.names) == 2 else None)
        return self.names.index(name) if name in self.names else None


def predicted_class(classes: ClassNames, sample: RowSample) -> IntArray:
    """The row's prediction as a class index; the highest score's class where none was logged."""
    stated = classes.index(sample.prediction, sample.prediction_code)
    missing = np.isnan(sample.prediction) & np.isnan(sample.prediction_code)
    if not missing.any():
        return stated
    best = np.argmax(np.nan_to_num(sample.scores, nan=-1.0), axis=1)
    return np.where(missing, best, stated)


def scored_rows(classes: ClassNames, sample: RowSample) -> BoolArray:
    """Rows with a score for every class and a prediction that is one of them."""
    complete = ~np.isnan(sample.scores).any(axis=1)
    return np.asarray(complete & (predicted_class(classes, sample) >= 0))


@dataclass(frozen=True)
class MulticlassCbpe:
    calibration: Calibration
    classes: ClassNames
    positive: int | None
    reference_rows: int
    method: str = "cbpe"

    @property
    def score_classes(self) -> tuple[str, ...]:
        return self.classes.names

    def usable(self, sample: RowSample) -> BoolArray:
        return scored_rows(self.classes, sample)

    def _scored(self, sample: RowSample) -> Scored:
        rows = sample.take(self.usable(sample))
        s = rows.scores
        return Scored.of(self.calibration(s), s, predicted_class(self.classes, rows))

    def estimate(self, sample: RowSample) -> dict[str, Estimate]:
        return cbpe(
            self._scored(sample),
            positive=self.positive,
            reference_rows=self.reference_rows,
            band_rows=BAND_ROWS,
        )

    def points(self, sample: RowSample) -> dict[str, float]:
        got = point_estimates(self._scored(sample), positive=self.positive)
        return {k: v for k, v in got.items() if v is not None}

    def labelled(self, sample: RowSample) -> BoolArray:
        truth = self.classes.index(sample.label, sample.label_code)
        return np.asarray(has_label(sample) & self.usable(sample) & (truth >= 0))

    def realized(self, sample: RowSample) -> dict[str, float]:
        truth = self.classes.index(sample.label, sample.label_code)
        predicted = predicted_class(self.classes, sample)
        k = len(self.classes.names)
        out = confusion_metrics(counted_confusion(truth, predicted, k), positive=self.positive)
        wanted = [self.positive] if self.positive is not None else range(k)
        aucs = [perf.roc_auc(truth == c, sample.scores[:, c], positive=True) for c in wanted]
        if all(a is not None for a in aucs):
            out["roc_auc"] = float(np.mean([a for a in aucs if a is not None]))
        return out


def fit_multiclass(
    reference: RowSample, classes: ClassNames, positive_class: str | None
) -> MulticlassCbpe | None:
    """CBPE calibrated on the reference rows that are scored and labelled with one of the
    classes; None with too few of them, or a class too rare to calibrate (fewer than 5 rows of
    it, or of the rest)."""
    if len(classes.names) < 2:
        return None
    truth = classes.index(reference.label, reference.label_code)
    rows = np.asarray(scored_rows(classes, reference) & (truth >= 0))
    if int(rows.sum()) < MIN_REFERENCE_ROWS:
        return None
    try:
        calibration = fit_calibration(reference.scores[rows], truth[rows])
    except EmptySampleError:
        return None
    return MulticlassCbpe(calibration, classes, classes.positive(positive_class), int(rows.sum()))
