"""Serving figures: latency quantiles, throughput, error ratio, canary vs production.

Latencies are in whatever unit the caller passes (the exporter publishes seconds). The serving
job gets its counts, quantiles and prediction rollups from PostgreSQL and compares them here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.stats import selection
from monitor.stats.binned import Rollup
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
class Traffic:
    """One group's window as the database aggregates it: status counts and latency quantiles."""

    total: int
    errors: int
    latency: Mapping[float, float]  # quantile -> latency


@dataclass(frozen=True, slots=True)
class VariantComparison:
    """A canary or shadow variant minus production; None where either side has no figure."""

    p95_latency_diff: float | None
    error_ratio_diff: float | None


def _difference(variant: float | None, production: float | None) -> float | None:
    if variant is None or production is None:
        return None
    return variant - production


def compare_variants(production: Traffic, variant: Traffic) -> VariantComparison:
    """p95 latency and error ratio of a variant against production's."""
    return VariantComparison(
        p95_latency_diff=_difference(variant.latency.get(0.95), production.latency.get(0.95)),
        error_ratio_diff=_difference(
            error_ratio(variant.errors, variant.total),
            error_ratio(production.errors, production.total),
        ),
    )


def prediction_drift(
    production: Rollup, variant: Rollup, *, numeric: bool, n_unique: int
) -> tuple[Score, MethodChoice] | None:
    """Drift of a variant's predictions against production's (the reference), both binned on
    the same bins, with the column's default method; None when either side is empty."""
    if production.n == 0 or variant.n == 0:
        return None
    choice = selection.choose_method(numeric=numeric, n_unique=n_unique, n_ref=int(production.n))
    return selection.METHODS[choice.method].binned(production, variant), choice
