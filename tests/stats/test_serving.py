"""Serving figures: quantiles as PostgreSQL computes them, rates, canary comparison."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.stats import serving
from monitor.stats.serving import VariantWindow


def test_latency_quantiles_interpolate_like_percentile_cont() -> None:
    # percentile_cont(q): position 1 + q (n - 1) between sorted values; n = 5
    quantiles = serving.latency_quantiles([10.0, 20.0, 30.0, 40.0, 100.0])
    assert quantiles == {
        0.5: 30.0,
        0.95: pytest.approx(40.0 + 0.8 * 60.0),
        0.99: pytest.approx(40.0 + 0.96 * 60.0),
    }


def test_latency_quantiles_of_no_data_are_empty() -> None:
    assert serving.latency_quantiles([]) == {}


def test_throughput_and_error_ratio() -> None:
    assert serving.throughput(7200, 3600.0) == 2.0
    with pytest.raises(ValueError, match="positive"):
        serving.throughput(1, 0.0)
    assert serving.error_ratio(3, 12) == 0.25
    assert serving.error_ratio(0, 0) is None


def test_canary_comparison_differences_are_canary_minus_production() -> None:
    rng = np.random.default_rng(0)
    production = VariantWindow(np.arange(1.0, 101.0), 2, 100, rng.normal(0, 1, 2000))
    canary = VariantWindow(np.arange(1.0, 101.0) * 2, 10, 100, rng.normal(1, 1, 500))
    result = serving.compare_variants(production, canary, numeric=True)
    assert result.p95_latency_diff == pytest.approx(np.quantile(np.arange(1.0, 101.0), 0.95))
    assert result.error_ratio_diff == pytest.approx(0.08)
    assert result.method is not None
    assert result.method.method == "wasserstein"
    assert result.prediction_drift is not None
    assert result.prediction_drift.statistic == pytest.approx(1.0, abs=0.15)


def test_canary_comparison_of_class_predictions_and_of_an_idle_canary() -> None:
    production = VariantWindow([1.0], 0, 1, ["a"] * 300 + ["b"] * 300)
    canary = VariantWindow([1.0], 0, 1, ["a"] * 100 + ["b"] * 300)
    result = serving.compare_variants(production, canary, numeric=False)
    assert result.method is not None
    assert result.method.method == "ztest"
    assert result.prediction_drift is not None
    assert result.prediction_drift.pvalue is not None
    assert result.prediction_drift.pvalue < 1e-6
    idle = serving.compare_variants(production, VariantWindow([], 0, 0, []), numeric=False)
    assert idle.p95_latency_diff is None
    assert idle.error_ratio_diff is None
    assert idle.prediction_drift is None
