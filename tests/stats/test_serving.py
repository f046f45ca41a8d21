"""Serving figures: quantiles as PostgreSQL computes them, rates, canary comparison."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.stats import binned, serving
from monitor.stats.binned import Rollup
from monitor.stats.serving import Traffic


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
    production = Traffic(total=100, errors=2, latency={0.5: 50.0, 0.95: 95.0})
    canary = Traffic(total=100, errors=10, latency={0.5: 100.0, 0.95: 190.0})
    result = serving.compare_variants(production, canary)
    assert result.p95_latency_diff == pytest.approx(95.0)
    assert result.error_ratio_diff == pytest.approx(0.08)


def test_an_idle_canary_has_no_differences() -> None:
    production = Traffic(total=100, errors=2, latency={0.95: 95.0})
    idle = serving.compare_variants(production, Traffic(total=0, errors=0, latency={}))
    assert idle.p95_latency_diff is None
    assert idle.error_ratio_diff is None


def test_prediction_drift_of_a_shifted_numeric_output_on_production_deciles() -> None:
    rng = np.random.default_rng(0)
    production, canary = rng.normal(0, 1, 2000), rng.normal(1, 1, 500)
    edges = np.quantile(production, np.arange(1, 10) / 10)
    found = serving.prediction_drift(
        binned.rollup(production, edges), binned.rollup(canary, edges), numeric=True, n_unique=2500
    )
    assert found is not None
    score, choice = found
    assert choice.method == "wasserstein"
    assert score.statistic == pytest.approx(1.0, abs=0.15)


def test_prediction_drift_of_class_predictions_and_of_an_idle_canary() -> None:
    _, production, canary = binned.align_categories({"a": 300, "b": 300}, {"a": 100, "b": 300})
    found = serving.prediction_drift(production, canary, numeric=False, n_unique=2)
    assert found is not None
    score, choice = found
    assert choice.method == "ztest"
    assert score.pvalue is not None
    assert score.pvalue < 1e-6
    idle = Rollup(np.zeros(2))
    assert serving.prediction_drift(production, idle, numeric=False, n_unique=2) is None
