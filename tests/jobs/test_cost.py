"""The cost job: cost per one million predictions with known answers."""

from __future__ import annotations

import pytest

from monitor.jobs.runner import run_jobs
from monitor.services import Services
from tests.jobs.helpers import at, configure, labels, latest, predictions, window_end


def _cost(services: Services, window: str, currency: str = "USD") -> float | None:
    return latest(services)[("cost_per_million_predictions", "", window, labels(currency=currency))]


def test_provisioned_gpus_plus_tokens(services: Services) -> None:
    configure(
        services,
        "llm",
        task="llm",
        cost={
            "gpu_hour_price": 2.0,
            "gpus": 1,
            "replicas": 2,
            "input_token_price_per_1k": 0.01,
            "output_token_price_per_1k": 0.03,
        },
    )
    end = window_end()
    predictions(
        services,
        "llm",
        [
            {"timestamp": at(end, 5 + i), "tokens_in": 1000, "tokens_out": 100, "model_version": v}
            for i, v in enumerate(["a", "a", "a", "a", "b", "b", "b", "b"])
        ],
    )
    assert run_jobs(services, "llm", "cost", now=end).failures == 0
    # 1h: 2 $/h x 1 GPU x 2 replicas x 1 h = 4, tokens 8 x (1 x 0.01 + 0.1 x 0.03) = 0.104
    assert _cost(services, "1h") == pytest.approx(4.104 / 8 * 1e6)
    # 24h: 96 + 0.104 over the same 8 predictions
    assert _cost(services, "24h") == pytest.approx(96.104 / 8 * 1e6)
    assert latest(services)[("window_samples", "", "1h", labels(metric="cost"))] == 8


def test_metered_gpu_seconds_in_the_configured_currency(services: Services) -> None:
    configure(services, "vision", cost={"currency": "EUR", "gpu_second_price": 0.001})
    end = window_end()
    predictions(
        services, "vision", [{"timestamp": at(end, 5), "gpu_seconds": 0.5} for _ in range(4)]
    )
    assert run_jobs(services, "vision", "cost", now=end).failures == 0
    # 4 x 0.5 GPU-seconds x 0.001 EUR = 0.002 EUR for 4 predictions
    assert _cost(services, "1h", "EUR") == pytest.approx(500.0)


def test_hourly_price_meters_gpu_seconds_when_reported(services: Services) -> None:
    configure(services, "hourly", cost={"gpu_hour_price": 3.6})
    end = window_end()
    predictions(services, "hourly", [{"timestamp": at(end, 5), "gpu_seconds": 2.0}])
    assert run_jobs(services, "hourly", "cost", now=end).failures == 0
    # 2 s at 3.6 / 3600 per second = 0.002 for one prediction
    assert _cost(services, "1h") == pytest.approx(2000.0)


def test_no_price_no_cost(services: Services) -> None:
    predictions(services, "free", [{"timestamp": at(window_end(), 5)}])
    assert run_jobs(services, "free", "cost", now=window_end()).failures == 0
    assert [k[0] for k in latest(services)] == ["window_samples", "window_samples"]
