"""Model quality from labelled predictions: classification and regression metrics.

Plain numpy, written to agree with scikit-learn (the tests use it as an oracle): 0/0 in
precision, recall or F1 counts as 0 (sklearn's ``zero_division`` default), ROC AUC gives tied
scores half credit, log loss clips probabilities to [eps, 1 - eps] with the float64 eps.
A metric that is undefined for the data (AUC with one class present, MAPE with all-zero
targets) is None rather than a number a dashboard would mistake for a measurement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from monitor.stats._arrays import FloatArray, as_sample

_EPS = float(np.finfo(np.float64).eps)


def _labels(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[npt.NDArray[Any], ...]:
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} labels but {p.size} predictions")
    if t.size == 0:
        raise ValueError("no labelled predictions")
    return t, p


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Share of predictions equal to the label."""
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p))


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _per_class(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, positive: object | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """True positives, false positives and false negatives for the positive class, or for every
    class in the union of labels and predictions when ``positive`` is None (macro averaging)."""
    t, p = _labels(y_true, y_pred)
    classes = np.unique(np.concatenate([t, p])) if positive is None else np.array([positive])
    is_true = t[None, :] == classes[:, None]
    is_pred = p[None, :] == classes[:, None]
    tp = (is_true & is_pred).sum(axis=1).astype(np.float64)
    return tp, (~is_true & is_pred).sum(axis=1) * 1.0, (is_true & ~is_pred).sum(axis=1) * 1.0


def precision(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: object = None) -> float:
    """Precision of the ``positive`` class (binary), or the macro average over classes."""
    tp, fp, _ = _per_class(y_true, y_pred, positive)
    return float(np.mean(_ratio(tp, tp + fp)))


def recall(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: object = None) -> float:
    """Recall of the ``positive`` class (binary), or the macro average over classes."""
    tp, _, fn = _per_class(y_true, y_pred, positive)
    return float(np.mean(_ratio(tp, tp + fn)))


def f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, positive: object = None) -> float:
    """F1 of the ``positive`` class (binary), or the macro average of per-class F1."""
    tp, fp, fn = _per_class(y_true, y_pred, positive)
    return float(np.mean(_ratio(2.0 * tp, 2.0 * tp + fp + fn)))


def _is_positive(y_true: npt.ArrayLike, positive: object) -> npt.NDArray[np.bool_]:
    return np.asarray(np.asarray(y_true).ravel() == positive, dtype=np.bool_)


def roc_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike, *, positive: object = 1) -> float | None:
    """Area under the ROC curve of ``scores`` for the ``positive`` class; None if one class.

    Computed as the Mann-Whitney U statistic with average ranks, which gives tied
    positive/negative pairs half credit, exactly like sklearn's trapezoidal ROC curve.
    """
    hit, s = _is_positive(y_true, positive), as_sample(scores)
    _same_size(hit.size, s.size)
    n_pos, n_neg = int(hit.sum()), int((~hit).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(s)
    return float((ranks[hit].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _same_size(n_labels: int, n_values: int) -> None:
    if n_labels != n_values:
        raise ValueError(f"{n_labels} labels but {n_values} predictions")


def log_loss(y_true: npt.ArrayLike, p_positive: npt.ArrayLike, *, positive: object = 1) -> float:
    """Mean binary cross-entropy (natural log) of the predicted probability of ``positive``."""
    hit, p = _is_positive(y_true, positive), as_sample(p_positive)
    _same_size(hit.size, p.size)
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return float(-np.mean(np.where(hit, np.log(p), np.log1p(-p))))


def log_loss_multiclass(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, labels: npt.ArrayLike
) -> float:
    """Mean cross-entropy; ``proba[i, j]`` is the probability of ``labels[j]`` for row i."""
    t, names = np.asarray(y_true).ravel(), np.asarray(labels).ravel()
    p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0 - _EPS)
    if p.shape != (t.size, names.size):
        raise ValueError(f"proba must have shape ({t.size}, {names.size})")
    sorter = np.argsort(names)
    column = sorter[np.searchsorted(names, t, sorter=sorter).clip(0, names.size - 1)]
    if not np.all(names[column] == t):
        raise ValueError("a label is missing from labels")
    return float(-np.mean(np.log(p[np.arange(t.size), column])))


def _residuals(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    t, p = as_sample(y_true), as_sample(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} targets but {p.size} predictions")
    return t, p - t


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean absolute error."""
    _, residual = _residuals(y_true, y_pred)
    return float(np.mean(np.abs(residual)))


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared error."""
    _, residual = _residuals(y_true, y_pred)
    return float(np.sqrt(np.mean(residual * residual)))


def mape(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float | None:
    """Mean absolute percentage error as a fraction (0.1 = 10%), over rows with a non-zero target.

    A zero target has no relative error, so those rows are left out, and the result is None
    when every target is zero. (sklearn instead divides by float64 eps, turning one zero target
    into an error of about 1e15; on data without zeros the two agree.)
    """
    t, residual = _residuals(y_true, y_pred)
    nonzero = t != 0
    if not nonzero.any():
        return None
    return float(np.mean(np.abs(residual[nonzero] / t[nonzero])))
