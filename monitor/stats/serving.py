"""Serving figures: latency quantiles, throughput, error ratio, canary vs production.

Latencies are in whatever unit the caller passes (the exporter publishes seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.stats import selection
from monitor.stats.selection import MethodChoice, Score

DEFAULT_QUANTILES = (0.5, 0.95, 0.99)


def latency_quantiles(
    latencies: npt.ArrayLike, quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> dict[float, float]:
    """Quantiles by linear interpolation, as PostgreSQL ``percentile_cont``; {} if no data."""
    values = np.asarray(latencies, dtype=np.float64).ravel()
    if values.size == 0:
        return {}
    found = np.quantile(values, list(quantiles), method="linear")
    return {float(q): float(v) for q, v in zip(quantiles, found, strict=True)}


def throughput(count: int, window_seconds: float) -> float:
    """Predictions per second over the window."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return count / window_seconds


def error_ratio(errors: int, total: int) -> float | None:
    """Share of predictions whose status is not ok; None when there were none."""
    if total == 0:
        return None
    return errors / total


@dataclass(frozen=True, slots=True)
class VariantWindow:
    """One variant's traffic in a window: raw latencies and predictions, status counts."""

    latencies: npt.ArrayLike
    errors: int
    total: int
    predictions: npt.ArrayLike


@dataclass(frozen=True, slots=True)
class VariantComparison:
    """Canary minus production; None where either side has no data."""

    p95_latency_diff: float | None
    error_ratio_diff: float | None
    prediction_drift: Score | None
    method: MethodChoice | None


def _p95(latencies: npt.ArrayLike) -> float | None:
    return latency_quantiles(latencies, (0.95,)).get(0.95)


def _difference(canary: float | None, production: float | None) -> float | None:
    if canary is None or production is None:
        return None
    return canary - production


def prediction_drift(
    production: npt.ArrayLike, canary: npt.ArrayLike, *, numeric: bool, method: str | None = None
) -> tuple[Score, MethodChoice] | None:
    """Drift of the canary's predictions against production's, production as the reference.

    The method is the default for the column (``selection.choose_method``) unless given.
    """
    ref, cur = np.ravel(production), np.ravel(canary)
    if ref.size == 0 or cur.size == 0:
        return None
    n_unique = selection.unique_count(ref, cur)
    choice = selection.choose_method(
        numeric=numeric, n_unique=n_unique, n_ref=ref.size, method=method
    )
    return selection.METHODS[choice.method].exact(ref, cur, numeric), choice


def compare_variants(
    production: VariantWindow, canary: VariantWindow, *, numeric: bool, method: str | None = None
) -> VariantComparison:
    """p95 latency, error ratio and prediction distribution of a canary against production."""
    drift = prediction_drift(
        production.predictions, canary.predictions, numeric=numeric, method=method
    )
    return VariantComparison(
        p95_latency_diff=_difference(_p95(canary.latencies), _p95(production.latencies)),
        error_ratio_diff=_difference(
            error_ratio(canary.errors, canary.total),
            error_ratio(production.errors, production.total),
        ),
        prediction_drift=None if drift is None else drift[0],
        method=None if drift is None else drift[1],
    )
