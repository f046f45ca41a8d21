"""Cost per one million predictions in a window.

Compute cost comes from one of two bases:

- metered: the window's summed per-prediction ``gpu_seconds`` × the price of a GPU-second
  (``gpu_second_price``, or ``gpu_hour_price`` / 3600). Used whenever predictions report
  ``gpu_seconds`` and a GPU price is configured; it leaves out idle capacity.
- provisioned: ``gpu_hour_price`` × ``gpus`` × ``replicas`` × wall-clock hours of the window,
  what reserved GPUs cost whether busy or not. Used when no ``gpu_seconds`` were reported.

Token cost (LLMs) adds input and output tokens at their prices per 1k tokens. The result is
None when there were no predictions or when no configured price applies to the window.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0
PER_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Prices:
    """The price fields of ``CostSettings`` (currency is a label, not arithmetic)."""

    gpu_hour_price: float | None = None
    gpus: float = 1.0
    replicas: int = 1
    gpu_second_price: float | None = None
    input_token_price_per_1k: float | None = None
    output_token_price_per_1k: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What the window consumed; ``gpu_seconds`` is None when no prediction reported it."""

    predictions: int
    window_seconds: float
    gpu_seconds: float | None = None
    tokens_in: float = 0.0
    tokens_out: float = 0.0


def gpu_second_price(prices: Prices) -> float | None:
    """Price of one GPU-second: configured, or derived from the hourly price."""
    if prices.gpu_second_price is not None:
        return prices.gpu_second_price
    if prices.gpu_hour_price is not None:
        return prices.gpu_hour_price / SECONDS_PER_HOUR
    return None


def provisioned_gpu_cost(prices: Prices, window_seconds: float) -> float | None:
    """GPU-hour price × GPUs × replicas × wall hours; None without an hourly price."""
    if prices.gpu_hour_price is None:
        return None
    hours = window_seconds / SECONDS_PER_HOUR
    return prices.gpu_hour_price * prices.gpus * prices.replicas * hours


def metered_gpu_cost(prices: Prices, gpu_seconds: float) -> float | None:
    """Summed GPU-seconds × the GPU-second price; None without a GPU price."""
    price = gpu_second_price(prices)
    return None if price is None else gpu_seconds * price


def compute_cost(prices: Prices, usage: Usage) -> float | None:
    """Metered when GPU-seconds were reported, provisioned otherwise (see module)."""
    if usage.gpu_seconds is not None:
        return metered_gpu_cost(prices, usage.gpu_seconds)
    return provisioned_gpu_cost(prices, usage.window_seconds)


def token_cost(prices: Prices, usage: Usage) -> float | None:
    """Input and output tokens at their prices per 1k; None when neither price is set."""
    parts = [
        (usage.tokens_in, prices.input_token_price_per_1k),
        (usage.tokens_out, prices.output_token_price_per_1k),
    ]
    priced = [tokens / 1000.0 * price for tokens, price in parts if price is not None]
    return sum(priced) if priced else None


def cost_per_million(prices: Prices, usage: Usage) -> float | None:
    """(compute cost + token cost) / predictions × 1e6; None if nothing to divide or price."""
    if usage.predictions <= 0:
        return None
    parts = [c for c in (compute_cost(prices, usage), token_cost(prices, usage)) if c is not None]
    if not parts:
        return None
    return sum(parts) / usage.predictions * PER_MILLION
