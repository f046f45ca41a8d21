"""Drift verdicts: thresholds, the minimum-sample guard, dataset drift, multiple testing.

The statistics never decide; these functions do, from a ``MethodChoice``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from monitor.stats._arrays import FloatArray
from monitor.stats.selection import MethodChoice

Correction = Literal["none", "bonferroni", "fdr"]

DEFAULT_MIN_SAMPLES = 100
DEFAULT_DRIFT_SHARE = 0.5


def drift_verdict(score_or_p: float, choice: MethodChoice) -> bool:
    """Drift by the choice's threshold: a small p-value, or a large distance."""
    if choice.kind == "pvalue":
        if choice.inclusive:
            return score_or_p <= choice.threshold
        return score_or_p < choice.threshold
    if choice.inclusive:
        return score_or_p >= choice.threshold
    return score_or_p > choice.threshold


def guarded_verdict(
    score_or_p: float,
    choice: MethodChoice,
    *,
    n_ref: int,
    n_cur: int,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> bool | None:
    """``drift_verdict``, or None (no verdict) when either sample has fewer than
    ``min_samples`` rows: small windows make tests noisy and distances biased upwards."""
    if min(n_ref, n_cur) < min_samples:
        return None
    return drift_verdict(score_or_p, choice)


def drift_share(verdicts: Iterable[bool | None]) -> float | None:
    """Share of drifted features among those with a verdict; None when none has one."""
    decided = [v for v in verdicts if v is not None]
    if not decided:
        return None
    return sum(decided) / len(decided)


def dataset_drift(share: float | None, threshold: float = DEFAULT_DRIFT_SHARE) -> bool | None:
    """Dataset drift when the share of drifted features is at least ``threshold`` (Evidently)."""
    if share is None:
        return None
    return share >= threshold


def bonferroni(pvalues: npt.ArrayLike) -> FloatArray:
    """Bonferroni-adjusted p-values, min(1, m p)."""
    p = np.asarray(pvalues, dtype=np.float64)
    return np.minimum(p * p.size, 1.0)


def benjamini_hochberg(pvalues: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), as statsmodels' fdr_bh:
    p_(i) m / i, made monotone from the largest p down, capped at 1, in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    scaled = p[order] * p.size / np.arange(1, p.size + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted


def correct_pvalues(
    values: Sequence[float], choices: Sequence[MethodChoice], correction: Correction
) -> list[float]:
    """Adjust the p-values among ``values`` for testing many features at once.

    Only features whose choice is a p-value method are corrected, and ``m`` counts only them;
    distances are not probabilities and pass through unchanged. Pass only the features that
    get a verdict (after the minimum-sample guard). Compare the result with the same
    thresholds via ``drift_verdict``.
    """
    if len(values) != len(choices):
        raise ValueError("one choice per value")
    tested = [i for i, c in enumerate(choices) if c.kind == "pvalue"]
    if correction == "none" or not tested:
        return list(values)
    adjust = bonferroni if correction == "bonferroni" else benjamini_hochberg
    adjusted = adjust([values[i] for i in tested])
    out = list(values)
    for i, p in zip(tested, adjusted, strict=True):
        out[i] = float(p)
    return out
