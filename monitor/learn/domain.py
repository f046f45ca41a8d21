"""The domain classifier: how well can a model tell current rows from reference rows?

A gradient-boosting classifier is cross-validated on a bounded, balanced sample (the same
number of rows from each side, stratified folds); its mean out-of-fold ROC AUC is the score,
0.5 when the two are indistinguishable. Feature importance is the drop in held-out AUC when a
column is shuffled (gradient boosting in scikit-learn has no split-gain importance).
It runs on one thread (threadpoolctl): the jobs run beside other work, and OpenMP threads
spinning for a busy core make a fit many times slower, not faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from monitor.stats._arrays import EmptySampleError, FloatArray
from monitor.stats.performance import roc_auc

DEFAULT_MAX_ROWS = 5000
"""Rows per side: the score's sampling sd at 5000 + 5000 is about 0.006."""

FOLDS = 3
"""Cross-validation folds: at 5000 + 5000 rows three fits on 6667 rows each gave the AUC of five
on 8000 to within 0.009 (8 samples, drifted and not; the score's sampling sd is 0.006) in 0.64
of the time; the verdicts are far from that (no drift: 0.50, the threshold 0.55)."""
ITERATIONS = 50
"""Boosting rounds: enough to learn a two-feature interaction, half the default's time."""
MIN_ROWS = 20


@dataclass(frozen=True, slots=True)
class DomainScore:
    auc: float
    fold_aucs: tuple[float, ...]
    importances: FloatArray
    n_reference: int
    n_current: int


def balanced_sample(
    reference: FloatArray, current: FloatArray, max_rows: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Up to ``max_rows`` rows from each side, the same number from both, without replacement."""
    n = min(reference.shape[0], current.shape[0], max_rows)
    pick_ref = rng.choice(reference.shape[0], n, replace=False)
    pick_cur = rng.choice(current.shape[0], n, replace=False)
    return reference[np.sort(pick_ref)], current[np.sort(pick_cur)]


def _classifier(categorical: Sequence[bool], seed: int) -> Any:
    return HistGradientBoostingClassifier(
        max_iter=ITERATIONS,
        categorical_features=list(categorical) if any(categorical) else None,
        early_stopping=False,
        random_state=seed,
    )


def _auc(model: Any, x: FloatArray, y: npt.NDArray[np.int64]) -> float:
    value = roc_auc(y, model.predict_proba(x)[:, 1])
    return 0.5 if value is None else value


def _permutation_drop(
    model: Any, x: FloatArray, y: npt.NDArray[np.int64], rng: np.random.Generator
) -> FloatArray:
    # every column's shuffled copy scored in one predict call: a call's fixed cost (checks,
    # the categorical encoder) is most of what 20 calls on 2000 rows each take
    n, width = x.shape
    shuffled = np.tile(x, (width + 1, 1))
    for j in range(width):
        shuffled[(j + 1) * n : (j + 2) * n, j] = rng.permutation(x[:, j])
    scores = model.predict_proba(shuffled)[:, 1]
    aucs = [roc_auc(y, scores[k * n : (k + 1) * n]) for k in range(width + 1)]
    base, *each = (0.5 if a is None else a for a in aucs)
    return base - np.asarray(each, dtype=np.float64)


def domain_classifier(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    categorical: Sequence[bool] = (),
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
) -> DomainScore:
    """Cross-validated ROC AUC of reference-vs-current and per-column importance."""
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference {ref.shape} and current {cur.shape} must share columns")
    if min(ref.shape[0], cur.shape[0]) < MIN_ROWS:
        raise EmptySampleError(f"the domain classifier needs {MIN_ROWS} rows on each side")
    rng = np.random.default_rng(seed)
    ref, cur = balanced_sample(ref, cur, max_rows, rng)
    x = np.vstack([ref, cur])
    y = np.r_[np.zeros(ref.shape[0], np.int64), np.ones(cur.shape[0], np.int64)]
    mask = list(categorical) or [False] * x.shape[1]
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    aucs: list[float] = []
    importances = np.zeros(x.shape[1])
    with threadpool_limits(limits=1):
        for i, (train, test) in enumerate(folds.split(x, y)):
            model = _classifier(mask, seed).fit(x[train], y[train])
            aucs.append(_auc(model, x[test], y[test]))
            if i == 0:
                importances = _permutation_drop(model, x[test], y[test], rng)
    return DomainScore(float(np.mean(aucs)), tuple(aucs), importances, ref.shape[0], cur.shape[0])
