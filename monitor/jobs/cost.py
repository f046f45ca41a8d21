"""Cost per one million predictions of a model's deployment (every version pooled), from the
prices in its ``cost`` configuration; the arithmetic is ``monitor.stats.cost``."""

from __future__ import annotations

from monitor.catalogue import COST_PER_MILLION_PREDICTIONS, WINDOW_SAMPLES
from monitor.jobs.base import ALL_VERSIONS, Window
from monitor.jobs.context import JobContext
from monitor.schemas import CostSettings
from monitor.stats.cost import Prices, Usage, compute_cost, cost_per_million, token_cost
from monitor.storage.labelled import usage_totals
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span


def prices_of(cost: CostSettings) -> tuple[Prices, str]:
    """The model's prices and currency."""
    prices = Prices(
        gpu_hour_price=cost.gpu_hour_price,
        gpus=cost.gpus,
        replicas=cost.replicas,
        gpu_second_price=cost.gpu_second_price,
        input_token_price_per_1k=cost.input_token_price_per_1k,
        output_token_price_per_1k=cost.output_token_price_per_1k,
    )
    return prices, cost.currency


def run_cost(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    totals = usage_totals(ctx.db, Span(model.id, window.start, window.end))
    if totals.predictions == 0:
        return []
    prices, currency = prices_of(model.options.cost)
    usage = Usage(
        predictions=totals.predictions,
        window_seconds=window.seconds,
        gpu_seconds=totals.gpu_seconds,
        tokens_in=totals.tokens_in,
        tokens_out=totals.tokens_out,
    )
    samples = Result(
        ALL_VERSIONS,
        window.name,
        WINDOW_SAMPLES.result,
        float(totals.predictions),
        {"metric": "cost"},
    )
    value = cost_per_million(prices, usage)
    if value is None:
        return [samples]
    details = {
        "compute_cost": compute_cost(prices, usage),
        "token_cost": token_cost(prices, usage),
        "basis": "provisioned" if usage.gpu_seconds is None else "metered",
        "predictions": totals.predictions,
    }
    return [
        Result(
            ALL_VERSIONS,
            window.name,
            COST_PER_MILLION_PREDICTIONS.result,
            value,
            {"currency": currency},
            details,
        ),
        samples,
    ]
