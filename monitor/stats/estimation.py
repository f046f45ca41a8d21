"""Label-free performance estimation: CBPE arithmetic and the sampling band of an estimate.

CBPE (confidence-based performance estimation, as published by NannyML): once a model's scores
are calibrated, the probability that row i belongs to class k is known, so the *expected*
confusion matrix of a window is ``C[k, j] = sum_i p[i, k] * (prediction_i == j)``. Accuracy,
precision, recall and F1 follow from it with the same formulas as from counted labels, and the
expected ROC curve from the calibrated probabilities swept along the raw scores.

The band is the spread of what the labels will show: labels drawn from the calibrated
probabilities give the distribution of the realized metric on this window (a Poisson-binomial
for accuracy), so the band answers "how far from the estimate can the measured metric be at
this window size". The calibration itself is fitted in ``monitor.learn.calibration``; here
everything is arithmetic on arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from monitor.stats._arrays import EmptySampleError, FloatArray, IntArray

BAND_Z = 3.0
"""Half-width of a band in standard deviations (NannyML draws its bands at 3 sigma too)."""

DEFAULT_DRAWS = 200
"""Label draws for the band: the standard deviation is then known to within about 5%."""

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate, the standard deviation of the realized value, and the band."""

    value: float
    std: float
    lower: float
    upper: float


def with_band(
    value: float, std: float, *, z: float = BAND_Z, low: float = 0.0, high: float = np.inf
) -> Estimate:
    """``value ± z std``, clipped to the metric's range [low, high]."""
    lower = max(low, value - z * std)
    upper = min(high, value + z * std)
    return Estimate(value, std, lower, upper)


def _probabilities(proba: npt.ArrayLike) -> FloatArray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[0] == 0:
        raise EmptySampleError("no calibrated probabilities")
    return p


def _classes(predicted: npt.ArrayLike, n_rows: int) -> IntArray:
    y = np.asarray(predicted, dtype=np.int64).ravel()
    if y.size != n_rows:
        raise ValueError(f"{n_rows} probability rows but {y.size} predictions")
    return y


def expected_confusion(proba: npt.ArrayLike, predicted: npt.ArrayLike) -> FloatArray:
    """``C[k, j]``: expected rows of true class k predicted as j (rows = truth, as sklearn).

    ``proba`` is (n, K) calibrated probabilities, or (n,) for the positive class of a binary
    model; ``predicted`` the predicted class index of each row.
    """
    p = _probabilities(proba)
    y_hat = _classes(predicted, p.shape[0])
    one_hot = np.zeros_like(p)
    one_hot[np.arange(p.shape[0]), y_hat] = 1.0
    return p.T @ one_hot


def counted_confusion(
    labels: npt.ArrayLike, predicted: npt.ArrayLike, n_classes: int
) -> FloatArray:
    """The confusion matrix of class indices ``labels`` (truth) against ``predicted``."""
    t = np.asarray(labels, dtype=np.int64).ravel()
    y_hat = _classes(predicted, t.size)
    cells = np.bincount(t * n_classes + y_hat, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes).astype(np.float64)


def _safe(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion_metrics(confusion: FloatArray, *, positive: int | None) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of a (expected or counted) confusion matrix.

    ``positive`` picks one class (binary models); None macro-averages over classes. 0/0 counts
    as 0, as in ``monitor.stats.performance`` and sklearn.
    """
    tp = np.diag(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    per_class = {
        "precision": _safe(tp, predicted),
        "recall": _safe(tp, actual),
        "f1": _safe(2.0 * tp, predicted + actual),
    }
    out = {"accuracy": float(tp.sum() / confusion.sum())}
    for name, values in per_class.items():
        out[name] = float(values[positive] if positive is not None else values.mean())
    return out


def expected_roc_auc(scores: npt.ArrayLike, p_positive: npt.ArrayLike) -> float | None:
    """ROC AUC expected from calibrated probabilities, swept along the raw ``scores``.

    Each row counts ``p`` of a positive and ``1 - p`` of a negative at its score; the curve
    is the one sklearn draws with those weights (ties share a threshold, so get half credit).
    With probabilities of exactly 0 or 1 this is the realized AUC. None when no mass is on
    one side.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    if s.size != p.size or s.size == 0:
        raise ValueError(f"{s.size} scores but {p.size} probabilities")
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.cumsum(p)[last_of_tie], np.cumsum(1.0 - p)[last_of_tie]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def _ranks(scores: FloatArray) -> FloatArray:
    """Average ranks (1-based), so AUC of drawn labels gives ties half credit."""
    return np.asarray(stats.rankdata(scores), dtype=np.float64)


def _auc_from_ranks(ranks: FloatArray, hit: npt.NDArray[np.bool_]) -> float:
    n_pos = int(hit.sum())
    n_neg = hit.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[hit].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True, slots=True)
class Scored:
    """A window's scored rows: calibrated probabilities (n, K), raw scores (n, K), predictions."""

    proba: FloatArray
    scores: FloatArray
    predicted: IntArray

    @classmethod
    def of(cls, proba: npt.ArrayLike, scores: npt.ArrayLike, predicted: npt.ArrayLike) -> Scored:
        p, s = _probabilities(proba), _probabilities(scores)
        if p.shape != s.shape:
            raise ValueError(f"probabilities {p.shape} but scores {s.shape}")
        return cls(p, s, _classes(predicted, p.shape[0]))

    @property
    def n_classes(self) -> int:
        return int(self.proba.shape[1])


def _auc_positive(scored: Scored, positive: int | None) -> list[int]:
    return [positive] if positive is not None else list(range(scored.n_classes))


def point_estimates(scored: Scored, *, positive: int | None) -> dict[str, float | None]:
    """CBPE point estimates; ROC AUC is one-vs-rest, macro-averaged when ``positive`` is None."""
    out: dict[str, float | None] = dict(
        confusion_metrics(expected_confusion(scored.proba, scored.predicted), positive=positive)
    )
    aucs = [
        expected_roc_auc(scored.scores[:, k], scored.proba[:, k])
        for k in _auc_positive(scored, positive)
    ]
    defined = [a for a in aucs if a is not None]
    out["roc_auc"] = float(np.mean(defined)) if len(defined) == len(aucs) else None
    return out


def _draw_labels(cumulative: FloatArray, rng: np.random.Generator) -> IntArray:
    """One label per row from its cumulative class probabilities (n, K), K-1 comparisons."""
    u = rng.random(cumulative.shape[0]) * cumulative[:, -1]
    if cumulative.shape[1] == 2:
        return np.asarray(u >= cumulative[:, 0], dtype=np.int64)
    return np.asarray((u[:, None] >= cumulative[:, :-1]).sum(axis=1), dtype=np.int64)


def realized_draws(
    scored: Scored, *, positive: int | None, draws: int, rng: np.random.Generator
) -> dict[str, FloatArray]:
    """Each metric as measured on ``draws`` label sets drawn from the calibrated probabilities."""
    auc_classes = _auc_positive(scored, positive)
    ranks = [_ranks(scored.scores[:, k]) for k in auc_classes]
    cumulative = np.ascontiguousarray(np.cumsum(scored.proba, axis=1))
    out: dict[str, list[float]] = {name: [] for name in CLASSIFICATION_METRICS}
    for _ in range(draws):
        labels = _draw_labels(cumulative, rng)
        confusion = counted_confusion(labels, scored.predicted, scored.n_classes)
        for name, value in confusion_metrics(confusion, positive=positive).items():
            out[name].append(value)
        aucs = [_auc_from_ranks(r, labels == k) for r, k in zip(ranks, auc_classes, strict=True)]
        out["roc_auc"].append(float(np.mean(aucs)))
    return {name: np.asarray(values) for name, values in out.items()}


def subset(scored: Scored, rows: int, rng: np.random.Generator) -> Scored:
    """A uniform subset of at most ``rows`` of the scored rows."""
    if scored.proba.shape[0] <= rows:
        return scored
    pick = np.sort(rng.choice(scored.proba.shape[0], rows, replace=False))
    return Scored(scored.proba[pick], scored.scores[pick], scored.predicted[pick])


def cbpe(
    scored: Scored,
    *,
    positive: int | None,
    draws: int = DEFAULT_DRAWS,
    rng: np.random.Generator | None = None,
    z: float = BAND_Z,
    reference_rows: int | None = None,
    band_rows: int | None = None,
) -> dict[str, Estimate]:
    """Estimated accuracy, precision, recall, F1 and ROC AUC with their bands.

    The band is the spread of the realized metric over label draws; with ``reference_rows``
    (the labelled rows the calibration was fitted on) it also carries the calibration's own
    error, taken as that of the metric measured on the reference: sd * sqrt(1 + n / n_ref).
    ``band_rows`` draws the labels for at most that many rows (a uniform subset) and scales
    the spread by sqrt(m / n): these metrics are means or ratios of means, whose sd falls as
    1 / sqrt(n) once n is in the thousands, and the draws are most of the cost.
    A metric that the window cannot define (AUC with all mass on one class) is left out.
    ``rng`` defaults to a fixed seed so the same window always gets the same band.
    """
    generator = rng if rng is not None else np.random.default_rng(0)
    n = scored.proba.shape[0]
    drawn = subset(scored, band_rows, generator) if band_rows else scored
    simulated = realized_draws(drawn, positive=positive, draws=draws, rng=generator)
    shrink = float(np.sqrt(drawn.proba.shape[0] / n))
    widen = float(np.sqrt(1.0 + n / reference_rows)) if reference_rows else 1.0
    out: dict[str, Estimate] = {}
    for name, value in point_estimates(scored, positive=positive).items():
        values = simulated[name]
        values = values[np.isfinite(values)]
        if value is None or values.size < 2:
            continue
        sd = widen * shrink * float(np.std(values, ddof=1))
        out[name] = with_band(value, sd, z=z, high=1.0)
    return out


def mean_std(reference_std: float, n: int) -> float:
    """Standard deviation of the mean of ``n`` rows whose spread is ``reference_std``."""
    if n <= 0:
        raise EmptySampleError("no rows")
    return reference_std / float(np.sqrt(n))


def dle_estimates(
    abs_errors: npt.ArrayLike,
    squared_errors: npt.ArrayLike,
    *,
    reference_abs_std: float,
    reference_squared_std: float,
    z: float = BAND_Z,
) -> dict[str, Estimate]:
    """MAE and RMSE of a window from the predicted loss of each row (direct loss estimation).

    The band is the reference's spread of the realized losses over the window size (NannyML's
    DLE sampling error); RMSE's by the delta method, sd(MSE) / (2 RMSE).
    """
    a = np.clip(np.asarray(abs_errors, dtype=np.float64).ravel(), 0.0, None)
    sq = np.clip(np.asarray(squared_errors, dtype=np.float64).ravel(), 0.0, None)
    if a.size == 0 or a.size != sq.size:
        raise EmptySampleError("no predicted losses")
    mae_value, mse_value = float(a.mean()), float(sq.mean())
    rmse_value = float(np.sqrt(mse_value))
    mse_sd = mean_std(reference_squared_std, sq.size)
    rmse_sd = mse_sd / (2.0 * rmse_value) if rmse_value > 0 else float(np.sqrt(mse_sd))
    return {
        "mae": with_band(mae_value, mean_std(reference_abs_std, a.size), z=z),
        "rmse": with_band(rmse_value, rmse_sd, z=z),
    }


def expected_calibration_error(
    p_positive: npt.ArrayLike, hit: npt.ArrayLike, *, bins: int = 10
) -> float:
    """Expected calibration error over equal-frequency bins: sum_b (n_b / n) |mean(y) - mean(p)|.

    Equal-frequency bins (not equal width) so every bin has enough rows to measure a rate.
    """
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    y = np.asarray(hit, dtype=np.float64).ravel()
    if p.size == 0 or p.size != y.size:
        raise EmptySampleError("no scored, labelled rows")
    order = np.argsort(p, kind="stable")
    gaps = [
        abs(float(y[part].mean() - p[part].mean())) * part.size
        for part in np.array_split(order, min(bins, p.size))
    ]
    return float(sum(gaps) / p.size)


def null_calibration_error(p_positive: npt.ArrayLike, *, bins: int = 10) -> float:
    """The calibration error that perfectly calibrated scores show by chance, on average.

    In a bin of n_b rows, mean(y) - mean(p) has sd sqrt(sum p (1 - p)) / n_b, and the mean of
    its absolute value is sqrt(2 / pi) times that; weighted as ``expected_calibration_error``.
    """
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    if p.size == 0:
        raise EmptySampleError("no scores")
    order = np.argsort(p, kind="stable")
    total = sum(
        float(np.sqrt(np.sum(p[part] * (1.0 - p[part]))))
        for part in np.array_split(order, min(bins, p.size))
    )
    return float(np.sqrt(2.0 / np.pi) * total / p.size)


def estimate_errors(
    estimates: Mapping[str, float], realized: Mapping[str, float]
) -> dict[str, float]:
    """Realized minus estimated, for the metrics both sides have (how far to trust the estimate)."""
    return {name: realized[name] - value for name, value in estimates.items() if name in realized}
