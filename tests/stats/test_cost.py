"""Cost per one million predictions: arithmetic on known answers."""

from __future__ import annotations

import pytest

from monitor.stats import cost
from monitor.stats.cost import Prices, Usage


def test_provisioned_gpus_cost_the_wall_clock_window() -> None:
    # 2.5 per GPU-hour x 2 GPUs x 3 replicas x 2 h = 30; 30 / 600k predictions x 1e6 = 50
    prices = Prices(gpu_hour_price=2.5, gpus=2, replicas=3)
    usage = Usage(predictions=600_000, window_seconds=7200)
    assert cost.cost_per_million(prices, usage) == pytest.approx(50.0)


def test_metered_gpu_seconds_use_the_second_price() -> None:
    # 3600 GPU-seconds x 0.001 = 3.6 for 1.2M predictions -> 3.0 per million
    usage = Usage(predictions=1_200_000, window_seconds=86_400, gpu_seconds=3600)
    assert cost.cost_per_million(Prices(gpu_second_price=0.001), usage) == pytest.approx(3.0)


def test_metered_gpu_seconds_derive_the_second_price_from_the_hour_price() -> None:
    # 3600 GPU-seconds = 1 GPU-hour at 3.6 -> 3.6 for 1.2M predictions; gpus/replicas unused
    usage = Usage(predictions=1_200_000, window_seconds=86_400, gpu_seconds=3600)
    prices = Prices(gpu_hour_price=3.6, gpus=8, replicas=4)
    assert cost.cost_per_million(prices, usage) == pytest.approx(3.0)


def test_token_prices_add_to_the_compute_cost() -> None:
    # tokens: 2M in x 0.0005/1k = 1.0, 0.5M out x 0.0015/1k = 0.75; gpu 1 h x 1.25 = 1.25
    prices = Prices(
        gpu_hour_price=1.25, input_token_price_per_1k=0.0005, output_token_price_per_1k=0.0015
    )
    usage = Usage(predictions=1000, window_seconds=3600, tokens_in=2_000_000, tokens_out=500_000)
    assert cost.token_cost(prices, usage) == pytest.approx(1.75)
    assert cost.cost_per_million(prices, usage) == pytest.approx(3.0 / 1000 * 1e6)


def test_tokens_alone_are_priced_without_gpu_prices() -> None:
    prices = Prices(output_token_price_per_1k=0.002)
    usage = Usage(predictions=10, window_seconds=60, tokens_in=999, tokens_out=5000)
    assert cost.cost_per_million(prices, usage) == pytest.approx(0.01 / 10 * 1e6)


def test_no_predictions_or_no_price_gives_no_figure() -> None:
    assert cost.cost_per_million(Prices(gpu_hour_price=1.0), Usage(0, 3600)) is None
    assert cost.cost_per_million(Prices(), Usage(100, 3600, gpu_seconds=5.0)) is None
    assert cost.cost_per_million(Prices(gpu_second_price=0.1), Usage(100, 3600)) is None


def test_prices_take_the_price_fields_of_cost_settings_by_name() -> None:
    from dataclasses import fields

    from monitor.schemas import CostSettings

    settings = CostSettings(gpu_hour_price=2.0, gpus=4, replicas=2)
    not_prices = {"currency", "monthly_budget_per_million"}
    prices = Prices(**settings.model_dump(exclude=not_prices))
    assert {f.name for f in fields(Prices)} == set(CostSettings.model_fields) - not_prices
    assert cost.provisioned_gpu_cost(prices, 1800) == pytest.approx(8.0)
