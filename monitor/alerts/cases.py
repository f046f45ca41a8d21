"""promtool unit-test cases: for every alert, inputs where it fires and inputs where it must not.

`monitor alerts render` turns these into ``alerts/tests/*.test.yml``; the expected annotations
are the rule's templates expanded with the expected labels and value (see :func:`expand`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from monitor.alerts.promql import FB_FREE, FB_RESERVED, FB_USED, selector
from monitor.alerts.rules import (
    SLO_BUDGET_REMAINING_RECORD,
    SLO_CURRENT_BURN_RECORD,
    SLO_PERIOD_BURN_RECORD,
)
from monitor.catalogue import (
    COST_PER_MILLION_PREDICTIONS,
    DATASET_DRIFT_SHARE,
    DEPLOYMENT_EVENT_TIMESTAMP_SECONDS,
    ESTIMATED_PERFORMANCE_LOWER,
    ESTIMATED_PERFORMANCE_UPPER,
    FEATURE_DRIFT_DETECTED,
    INGEST_ROWS_TOTAL,
    JOB_FAILURES_TOTAL,
    JOB_LAST_SUCCESS_TIMESTAMP_SECONDS,
    MODEL_LOAD_SECONDS,
    MODEL_PERFORMANCE,
    MULTIVARIATE_DRIFT_DETECTED,
    PERFORMANCE_CEILING,
    PERFORMANCE_FLOOR,
    PREDICTION_ERROR_RATIO,
    PREDICTION_LATENCY_SECONDS,
    PREDICTIONS_OVER_LATENCY_SLO_TOTAL,
    PREDICTIONS_PER_SECOND,
    PREDICTIONS_TOTAL,
    SEGMENT_DRIFT_DETECTED,
    SLO_OBJECTIVE,
    VARIANT_ERROR_RATIO_DELTA,
    VARIANT_LATENCY_P95_DELTA_SECONDS,
    VARIANT_PREDICTION_DRIFT_DETECTED,
    VARIANT_PREDICTION_DRIFT_SCORE,
    WEBHOOK_DELIVERIES_TOTAL,
    WINDOW_SAMPLES,
)


@dataclass(frozen=True)
class Expect:
    """One firing alert: its labels from the series (rule labels are added) and its value."""

    labels: Mapping[str, str]
    value: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    alert: str
    series: Mapping[str, str]
    checks: tuple[tuple[str, tuple[Expect, ...]], ...]
    interval: str = "1m"


Samples = tuple[tuple[Mapping[str, str], float], ...]


@dataclass(frozen=True)
class ExprCase:
    """promtool ``promql_expr_test``s on one input: each check is (expression, eval time, the
    samples it must return as (labels, value)), for recording rules with known answers."""

    name: str
    series: Mapping[str, str]
    checks: tuple[tuple[str, str, Samples], ...]
    interval: str = "1m"


def series(metric: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{metric}{{{inner}}}"


FRAUD = {"model": "fraud", "model_version": "3.2.0"}
LLM = {"model": "llm", "model_version": "7b-v2"}
GPU_A = {"gpu": "0", "UUID": "GPU-0a", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "node-a"}
GPU_A1 = {**GPU_A, "gpu": "1", "UUID": "GPU-1a"}
GPU_B = {"gpu": "0", "UUID": "GPU-0b", "modelName": "NVIDIA L4", "hostname": "node-b"}
VLLM_0 = {"model_name": "llama-3-8b", "instance": "vllm-0:8000"}
VLLM_1 = {"model_name": "llama-3-8b", "instance": "vllm-1:8000"}


def _gpu(labels: Mapping[str, str]) -> dict[str, str]:
    host = labels.get("Hostname") or labels["hostname"]
    return {**labels, "host": host}


def _drift_cases() -> tuple[Case, ...]:
    amount = {**FRAUD, "feature": "amount", "window": "1h", "method": "wasserstein"}
    country = {**FRAUD, "feature": "country", "window": "1h", "method": "jensenshannon"}
    rows = {**FRAUD, "window": "1h", "metric": "drift"}
    share = {**FRAUD, "window": "1h"}
    return (
        Case(
            "feature drift fires after 30m on enough rows, only for the drifted feature",
            "MLFeatureDrift",
            {
                series(FEATURE_DRIFT_DETECTED.name, amount): "1x60",
                series(FEATURE_DRIFT_DETECTED.name, country): "0x60",
                series(WINDOW_SAMPLES.name, rows): "500x60",
            },
            (("20m", ()), ("45m", (Expect(amount, 1),))),
        ),
        Case(
            "feature drift stays quiet below the minimum sample size",
            "MLFeatureDrift",
            {
                series(FEATURE_DRIFT_DETECTED.name, amount): "1x60",
                series(WINDOW_SAMPLES.name, rows): "50x60",
            },
            (("45m", ()),),
        ),
        Case(
            "dataset drift fires when the drifted share reaches the threshold",
            "MLDatasetDrift",
            {
                series(DATASET_DRIFT_SHARE.name, share): "0.6x60",
                series(WINDOW_SAMPLES.name, rows): "500x60",
            },
            (("20m", ()), ("45m", (Expect(share, 0.6),))),
        ),
        Case(
            "dataset drift stays quiet below the threshold and on too few rows",
            "MLDatasetDrift",
            {
                series(DATASET_DRIFT_SHARE.name, share): "0.4x60",
                series(DATASET_DRIFT_SHARE.name, {**share, "window": "24h"}): "0.9x60",
                series(WINDOW_SAMPLES.name, rows): "500x60",
                series(WINDOW_SAMPLES.name, {**rows, "window": "24h"}): "20x60",
            },
            (("45m", ()),),
        ),
    )


def _multivariate_cases() -> tuple[Case, ...]:
    domain = {**FRAUD, "window": "1h", "method": "domain_classifier"}
    pca = {**FRAUD, "window": "1h", "method": "pca_reconstruction"}
    rows = {**FRAUD, "window": "1h", "metric": "multivariate"}
    segment_de = {**FRAUD, "window": "24h", "segment": "country=DE", "feature": "amount"}
    segment_fr = {**segment_de, "segment": "country=FR"}
    return (
        Case(
            "multivariate drift fires after 30m on enough rows, per method",
            "MLMultivariateDrift",
            {
                series(MULTIVARIATE_DRIFT_DETECTED.name, domain): "1x60",
                series(MULTIVARIATE_DRIFT_DETECTED.name, pca): "0x60",
                series(WINDOW_SAMPLES.name, rows): "5000x60",
            },
            (("20m", ()), ("45m", (Expect(domain, 1),))),
        ),
        Case(
            "multivariate drift stays quiet on a sample below the minimum size",
            "MLMultivariateDrift",
            {
                series(MULTIVARIATE_DRIFT_DETECTED.name, domain): "1x60",
                series(WINDOW_SAMPLES.name, rows): "40x60",
            },
            (("45m", ()),),
        ),
        Case(
            "segment drift fires for the drifted segment only, after 30m",
            "MLSegmentDrift",
            {
                series(SEGMENT_DRIFT_DETECTED.name, {**segment_de, "method": "ks"}): "1x60",
                series(SEGMENT_DRIFT_DETECTED.name, {**segment_fr, "method": "ks"}): "0x60",
            },
            (("20m", ()), ("45m", (Expect({**segment_de, "method": "ks"}, 1),))),
        ),
        Case(
            # with no drift a tick flags one (segment, feature) about as often as BH's 0.05:
            # the next tick draws another sample and clears it, which restarts the 30m
            "segment drift stays quiet on flags that do not last 30m (one-tick flukes)",
            "MLSegmentDrift",
            {
                series(SEGMENT_DRIFT_DETECTED.name, {**segment_de, "method": "ks"}): (
                    "0x9 1 0x9 1 0x9 1x20 0x20"
                ),
            },
            (("10m", ()), ("45m", ()), ("60m", ())),
        ),
    )


def _performance_cases() -> tuple[Case, ...]:
    accuracy = {**FRAUD, "window": "24h", "metric": "accuracy"}
    mae = {**FRAUD, "window": "24h", "metric": "mae"}
    labelled = {**FRAUD, "window": "24h", "metric": "performance"}
    return (
        Case(
            "performance drop fires for a falling accuracy and a rising error",
            "MLPerformanceDrop",
            {
                series(MODEL_PERFORMANCE.name, accuracy): "0.9x120 0.7x120",
                series(MODEL_PERFORMANCE.name, mae): "2x120 3x120",
                series(WINDOW_SAMPLES.name, labelled): "1000x240",
            },
            (("150m", ()), ("240m", (Expect(accuracy, 0.7), Expect(mae, 3)))),
        ),
        Case(
            "performance drop stays quiet when stable or on too few labels",
            "MLPerformanceDrop",
            {
                series(MODEL_PERFORMANCE.name, accuracy): "0.9x240",
                series(MODEL_PERFORMANCE.name, mae): "2x120 3x120",
                series(WINDOW_SAMPLES.name, labelled): "30x240",
            },
            (("240m", ()),),
        ),
    )


def _estimated_cases() -> tuple[Case, ...]:
    accuracy = {**FRAUD, "window": "24h", "metric": "accuracy"}
    f1 = {**FRAUD, "window": "24h", "metric": "f1"}
    mae = {**FRAUD, "window": "24h", "metric": "mae"}
    rows = {**FRAUD, "window": "24h", "metric": "estimated_performance"}
    # the job writes the bounds once per window, with no version (model-wide)
    floor = {"model": "fraud", "model_version": "", "window": "24h", "metric": "accuracy"}
    floor_1h = {**floor, "window": "1h"}
    ceiling = {**floor, "metric": "mae"}
    other = {"model": "other", "model_version": "", "window": "24h", "metric": "f1"}
    return (
        Case(
            "estimated drop fires once the upper band falls below the floor, or the lower band "
            "rises above the ceiling",
            "MLEstimatedPerformanceDrop",
            {
                series(ESTIMATED_PERFORMANCE_UPPER.name, accuracy): "0.95x60 0.86x60",
                series(ESTIMATED_PERFORMANCE_LOWER.name, mae): "2x60 4x60",
                series(PERFORMANCE_FLOOR.name, floor): "0.9x120",
                series(PERFORMANCE_FLOOR.name, floor_1h): "0.9x120",
                series(PERFORMANCE_CEILING.name, ceiling): "3x120",
                series(WINDOW_SAMPLES.name, rows): "5000x120",
            },
            (("80m", ()), ("100m", (Expect(accuracy, 0.86), Expect(mae, 4)))),
        ),
        Case(
            "estimated drop stays quiet while the band reaches the floor, on few rows, and for a "
            "metric or model without a floor",
            "MLEstimatedPerformanceDrop",
            {
                series(ESTIMATED_PERFORMANCE_UPPER.name, accuracy): "0.91x60 0.5x60",
                series(ESTIMATED_PERFORMANCE_UPPER.name, f1): "0.1x120",
                series(PERFORMANCE_FLOOR.name, floor): "0.9x120",
                series(PERFORMANCE_FLOOR.name, other): "0.9x120",
                series(WINDOW_SAMPLES.name, rows): "5000x60 40x60",
            },
            (("50m", ()), ("110m", ())),
        ),
    )


def _burn_cases() -> tuple[Case, ...]:
    ok = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "ok"})
    bad = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "timeout"})
    slow = series(PREDICTIONS_OVER_LATENCY_SLO_TOTAL.name, FRAUD)
    availability = {"model": "fraud", "slo": "availability"}
    latency = {"model": "fraud", "slo": "latency"}
    cases = (
        Case(
            "fast error burn pages at 5% errors",
            "MLErrorBudgetBurnFast",
            {ok: "0+95x120", bad: "0+5x120"},
            (("1m", ()), ("60m", (Expect(availability, 0.05),))),
        ),
        Case(
            "fast error burn pages on a 1h spike after a clean day (14.4x branch alone)",
            "MLErrorBudgetBurnFast",
            {ok: "0+100x360", bad: "0x300 3+3x60"},
            (("360m", (Expect(availability, 3 / 103),)),),
        ),
        Case(
            "fast error burn pages on 1% errors for hours (6x branch alone)",
            "MLErrorBudgetBurnFast",
            {ok: "0+99x120", bad: "0+1x120"},
            (("60m", (Expect(availability, 0.01),)),),
        ),
        Case(
            "fast error burn stays quiet at the budgeted rate",
            "MLErrorBudgetBurnFast",
            {ok: "0+999x120", bad: "0+1x120"},
            (("60m", ()),),
        ),
        Case(
            "fast error burn stops paging once the short window has recovered",
            "MLErrorBudgetBurnFast",
            {ok: "0+80x120", bad: "0+20x60 1200+0x60"},
            (("90m", ()),),
        ),
        Case(
            "slow error burn opens a ticket at twice the budgeted rate",
            "MLErrorBudgetBurnSlow",
            {ok: "0+998x120", bad: "0+2x120"},
            (("10m", ()), ("60m", (Expect(availability, 0.002),))),
        ),
        Case(
            "slow error burn stays quiet under the budgeted rate",
            "MLErrorBudgetBurnSlow",
            {ok: "0+9995x120", bad: "0+5x120"},
            (("60m", ()),),
        ),
        Case(
            "fast latency burn pages when 20% of predictions are slow",
            "MLLatencyBudgetBurnFast",
            {ok: "0+100x120", slow: "0+20x120"},
            (("1m", ()), ("60m", (Expect(latency, 0.2),))),
        ),
        Case(
            "fast latency burn stays quiet at the budgeted rate",
            "MLLatencyBudgetBurnFast",
            {ok: "0+100x120", slow: "0+1x120"},
            (("60m", ()),),
        ),
        Case(
            "slow latency burn opens a ticket at twice the budgeted rate",
            "MLLatencyBudgetBurnSlow",
            {ok: "0+100x120", slow: "0+2x120"},
            (("10m", ()), ("60m", (Expect(latency, 0.02),))),
        ),
        Case(
            "slow latency burn stays quiet under the budgeted rate",
            "MLLatencyBudgetBurnSlow",
            {ok: "0+200x120", slow: "0+1x120"},
            (("60m", ()),),
        ),
    )
    defaults = objectives("fraud", availability=0.999, latency=0.99)
    return tuple(replace(c, series={**c.series, **defaults}) for c in cases) + _own_budget_cases()


def objectives(
    model: str, *, availability: float, latency: float, samples: int = 400
) -> dict[str, str]:
    """The ``ml_slo_objective`` series the serving job exports for ``model`` (one per window:
    every window's row carries the same objective)."""
    targets = {"availability": availability, "latency": latency}
    return {
        series(
            SLO_OBJECTIVE.name, {"model": model, "window": window, "slo": slo}
        ): f"{t:g}x{samples}"
        for window in ("1h", "24h")
        for slo, t in targets.items()
    }


def _own_budget_cases() -> tuple[Case, ...]:
    """fraud (99.9 % available, 99 % fast) and llm (99 % available, 95 % fast) see the same
    traffic; each burns its own budget."""
    both = {
        **objectives("fraud", availability=0.999, latency=0.99),
        **objectives("llm", availability=0.99, latency=0.95),
    }

    def traffic(ok: str, bad: str, slow: str) -> dict[str, str]:
        out = dict(both)
        for labels in (FRAUD, LLM):
            out[series(PREDICTIONS_TOTAL.name, {**labels, "status": "ok"})] = ok
            out[series(PREDICTIONS_TOTAL.name, {**labels, "status": "error"})] = bad
            out[series(PREDICTIONS_OVER_LATENCY_SLO_TOTAL.name, labels)] = slow
        return out

    def burning(model: str, slo: str, value: float) -> Expect:
        return Expect({"model": model, "slo": slo}, value)

    return (
        Case(
            "2% errors page the 99.9% model, not the 99% model (budget 14.4x 0.1% vs 14.4x 1%)",
            "MLErrorBudgetBurnFast",
            traffic("0+98x120", "0+2x120", "0x120"),
            (("60m", (burning("fraud", "availability", 0.02),)),),
        ),
        Case(
            "20% errors page both models, each past its own 14.4x",
            "MLErrorBudgetBurnFast",
            traffic("0+80x120", "0+20x120", "0x120"),
            (
                (
                    "60m",
                    (burning("fraud", "availability", 0.2), burning("llm", "availability", 0.2)),
                ),
            ),
        ),
        Case(
            "0.5% errors ticket the 99.9% model only (over 3x its 0.1%, under the 1% of llm)",
            "MLErrorBudgetBurnSlow",
            traffic("0+199x120", "0+1x120", "0x120"),
            (("60m", (burning("fraud", "availability", 0.005),)),),
        ),
        Case(
            "20% slow predictions page the 99%-fast model, not the 95%-fast one (0.144 vs 0.72)",
            "MLLatencyBudgetBurnFast",
            traffic("0+100x120", "0x120", "0+20x120"),
            (("60m", (burning("fraud", "latency", 0.2),)),),
        ),
        Case(
            "3% slow predictions ticket the 99%-fast model only (over its 1%, under the 5% of llm)",
            "MLLatencyBudgetBurnSlow",
            traffic("0+100x120", "0x120", "0+3x120"),
            (("60m", (burning("fraud", "latency", 0.03),)),),
        ),
    )


def rounded(record: str, *matchers: str) -> str:
    """``record`` to 4 decimals: promtool compares floats exactly, and 1 - 0.999 is not 0.001."""
    return f"round({selector(record, *matchers)}, 0.0001)"


def _current_burn_cases() -> tuple[ExprCase, ...]:
    ok = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "ok"})
    bad = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "error"})
    llm_ok = series(PREDICTIONS_TOTAL.name, {**LLM, "status": "ok"})
    llm_bad = series(PREDICTIONS_TOTAL.name, {**LLM, "status": "error"})
    both = {
        **objectives("fraud", availability=0.999, latency=0.99),
        **objectives("llm", availability=0.99, latency=0.95),
    }
    availability = "availability"
    return (
        ExprCase(
            "1.44% errors over 5m burn a 99.9% budget 14.4x and a 99% budget 1.44x",
            {**both, ok: "0+9856x30", bad: "0+144x30", llm_ok: "0+9856x30", llm_bad: "0+144x30"},
            (
                (
                    rounded(SLO_CURRENT_BURN_RECORD, f'slo="{availability}"'),
                    "20m",
                    (
                        ({"model": "fraud", "slo": availability}, 14.4),
                        ({"model": "llm", "slo": availability}, 1.44),
                    ),
                ),
            ),
        ),
    )


def _budget_cases() -> tuple[ExprCase, ...]:
    """The 30-day budget: hourly samples, evaluated at 30 days (the period's end)."""
    month = 720  # hours
    ok = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "ok"})
    bad = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "error"})
    slow = series(PREDICTIONS_OVER_LATENCY_SLO_TOTAL.name, FRAUD)
    fraud = objectives("fraud", availability=0.999, latency=0.99, samples=month + 1)
    llm = objectives("llm", availability=0.99, latency=0.95, samples=month + 1)

    def traffic(labels: Mapping[str, str], ok: str, bad: str, slow: str) -> dict[str, str]:
        return {
            series(PREDICTIONS_TOTAL.name, {**labels, "status": "ok"}): ok,
            series(PREDICTIONS_TOTAL.name, {**labels, "status": "error"}): bad,
            series(PREDICTIONS_OVER_LATENCY_SLO_TOTAL.name, labels): slow,
        }

    def left(model: str, slo: str, value: float) -> tuple[Mapping[str, str], float]:
        return ({"model": model, "slo": slo}, value)

    remaining, burn = rounded(SLO_BUDGET_REMAINING_RECORD), rounded(SLO_PERIOD_BURN_RECORD)
    steady = ("0+99950x720", "0+50x720", "0+500x720")  # 0.05% errors, 0.5% slow
    return (
        ExprCase(
            "0.05% errors over 30 days leave 50% of a 99.9% budget and 95% of a 99% one; "
            "0.5% slow leave 50% of a 99%-fast budget and 90% of a 95%-fast one",
            {**fraud, **llm, **traffic(FRAUD, *steady), **traffic(LLM, *steady)},
            (
                (
                    remaining,
                    "30d",
                    (
                        left("fraud", "availability", 0.5),
                        left("fraud", "latency", 0.5),
                        left("llm", "availability", 0.95),
                        left("llm", "latency", 0.9),
                    ),
                ),
                (
                    burn,
                    "30d",
                    (
                        left("fraud", "availability", 0.5),
                        left("fraud", "latency", 0.5),
                        left("llm", "availability", 0.05),
                        left("llm", "latency", 0.1),
                    ),
                ),
            ),
            interval="1h",
        ),
        ExprCase(
            # 48000 predictions an hour; 719 of them (1.5%) fail for 24 of the 719 served hours
            # (the first hour is quiet, so the boundary sample never matters): 17256 errors of
            # 34512000 predictions, 0.05% over the period.
            "one bad day at 1.5% errors in a clean month spends half of a 99.9% budget",
            {
                **fraud,
                ok: "0 0+48000x695 33407281+47281x23",
                bad: "0 0x695 719+719x23",
            },
            (
                (
                    remaining,
                    "29d",
                    (left("fraud", "availability", 1.0), left("fraud", "latency", 1.0)),
                ),
                (
                    remaining,
                    "30d",
                    (left("fraud", "availability", 0.5), left("fraud", "latency", 1.0)),
                ),
            ),
            interval="1h",
        ),
        ExprCase(
            "2% slow predictions against a 99%-fast objective overspend the budget (-100%)",
            {**fraud, ok: "0+100000x720", slow: "0+2000x720"},
            (
                (
                    remaining,
                    "30d",
                    (left("fraud", "availability", 1.0), left("fraud", "latency", -1.0)),
                ),
                (
                    rounded(SLO_PERIOD_BURN_RECORD, 'slo="latency"'),
                    "30d",
                    (left("fraud", "latency", 2.0),),
                ),
            ),
            interval="1h",
        ),
    )


def _serving_cases() -> tuple[Case, ...]:
    total = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "ok"})
    canary = {**LLM, "variant": "canary"}
    production = {**LLM, "variant": "production"}
    cost = {**LLM, "window": "24h", "currency": "USD"}
    return (
        Case(
            "throughput drop fires when traffic falls to a tenth of yesterday's",
            "MLThroughputDrop",
            {total: "0+60x1440 86406+6x150"},
            (("1450m", ()), ("1560m", (Expect({"model": "fraud"}, 0.1),))),
        ),
        Case(
            "throughput drop stays quiet on steady traffic",
            "MLThroughputDrop",
            {total: "0+60x1590"},
            (("1560m", ()),),
        ),
        Case(
            "predictions stopped fires 30m after the last prediction",
            "MLPredictionsStopped",
            {total: "0+100x60 6000+0x90"},
            (("70m", ()), ("120m", (Expect({"model": "fraud"}),))),
        ),
        Case(
            "predictions stopped stays quiet while predictions arrive",
            "MLPredictionsStopped",
            {total: "0+100x150"},
            (("120m", ()),),
        ),
        Case(
            "slow model load warns for the slow variant only",
            "MLModelLoadSlow",
            {
                series(MODEL_LOAD_SECONDS.name, canary): "300x10",
                series(MODEL_LOAD_SECONDS.name, production): "45x10",
            },
            (("5m", (Expect(canary, 300),)),),
        ),
        Case(
            "slow model load stays quiet for loads under two minutes",
            "MLModelLoadSlow",
            {series(MODEL_LOAD_SECONDS.name, production): "45x10 119x10"},
            (("5m", ()), ("15m", ())),
        ),
        Case(
            "cost above budget fires after an hour, only where a budget exists and is exceeded",
            "MLCostAboveBudget",
            {
                series(COST_PER_MILLION_PREDICTIONS.name, cost): "250x90",
                series(COST_PER_MILLION_PREDICTIONS.name, {**cost, "window": "1h"}): "900x90",
                series(
                    COST_PER_MILLION_PREDICTIONS.name, {**FRAUD, "window": "24h", "currency": "USD"}
                ): "12x90",
                series(COST_PER_MILLION_PREDICTIONS.name, {**cost, "currency": "EUR"}): "500x90",
            },
            (("30m", ()), ("80m", (Expect(cost, 250),))),
        ),
    )


def _fb(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels GPUMemoryNearExhaustion adds: ``host`` and ``gpu_instance``."""
    instance = labels["gpu"]
    if "GPU_I_ID" in labels:
        instance += f" MIG {labels['GPU_I_PROFILE']} #{labels['GPU_I_ID']}"
    return {**_gpu(labels), "gpu_instance": instance}


def _framebuffer_cases() -> tuple[Case, ...]:
    """dcgm-exporter's FB_USED, FB_FREE and FB_RESERVED (MiB) with its full label set."""
    used, free, reserved = FB_USED, FB_FREE, FB_RESERVED
    a100 = {**XID_GPU, "UUID": "GPU-0a", "modelName": "NVIDIA A100-SXM4-80GB"}
    l4 = {**XID_GPU, "gpu": "1", "UUID": "GPU-1b", "pci_bus_id": "00000000:5E:00.0"}
    mig1 = {**XID_MIG, "GPU_I_ID": "1", "pod": "triton-0"}
    mig2 = {**XID_MIG, "GPU_I_ID": "2", "pod": "triton-1"}
    return (
        Case(
            "GPU memory warns under either host label, not for a half-full GPU",
            "GPUMemoryNearExhaustion",
            {
                series(used, GPU_A): "78000x30",
                series(free, GPU_A): "2000x30",
                series(used, GPU_B): "79000x30",
                series(free, GPU_B): "1000x30",
                series(used, GPU_A1): "40000x30",
                series(free, GPU_A1): "40000x30",
            },
            (("5m", ()), ("20m", (Expect(_fb(GPU_A), 0.975), Expect(_fb(GPU_B), 0.9875)))),
        ),
        Case(
            # 4050 of 81920 MiB free: 95.06 % unavailable; used / (used + free) says 94.99 %
            "GPU memory counts reserved memory as unavailable (free 4050 of 81920 MiB warns)",
            "GPUMemoryNearExhaustion",
            {
                series(used, a100): "76870x30",
                series(reserved, a100): "1000x30",
                series(free, a100): "4050x30",
                # 4300 of 23034 MiB free on an L4: 81 %, quiet
                series(used, l4): "18334x30",
                series(reserved, l4): "400x30",
                series(free, l4): "4300x30",
            },
            (("5m", ()), ("20m", (Expect(_fb(a100), 77870 / 81920),))),
        ),
        Case(
            "GPU memory stays quiet at 94.9% of the framebuffer, reserved included",
            "GPUMemoryNearExhaustion",
            {
                series(used, a100): "77200x30",
                series(reserved, a100): "540x30",
                series(free, a100): "4180x30",
            },
            (("20m", ()),),
        ),
        Case(
            "under MIG only the full GPU instance warns, named by its profile and id",
            "GPUMemoryNearExhaustion",
            {
                series(used, mig1): "38500x30",
                series(reserved, mig1): "400x30",
                series(free, mig1): "1292x30",
                series(used, mig2): "5000x30",
                series(reserved, mig2): "400x30",
                series(free, mig2): "34792x30",
            },
            (("5m", ()), ("20m", (Expect(_fb(mig1), 38900 / 40192),))),
        ),
    )


def _gpu_cases() -> tuple[Case, ...]:
    util = "DCGM_FI_DEV_GPU_UTIL"
    kv, waiting = "vllm:kv_cache_usage_perc", "vllm:num_requests_waiting"
    return (
        *_framebuffer_cases(),
        Case(
            "GPU saturation warns after 20m of a busy GPU, not for a half-busy one",
            "GPUSaturated",
            {series(util, GPU_A): "99x60", series(util, GPU_A1): "50x60"},
            (("15m", ()), ("40m", (Expect(_gpu(GPU_A), 99),))),
        ),
        Case(
            "KV cache warns when full and requests wait, not when full and idle",
            "VLLMKVCacheSaturated",
            {
                series(kv, VLLM_0): "0.98x30",
                series(waiting, VLLM_0): "4x30",
                series(kv, VLLM_1): "0.98x30",
                series(waiting, VLLM_1): "0x30",
            },
            (("5m", ()), ("20m", (Expect(VLLM_0, 0.98),))),
        ),
    )


def _variant_cases() -> tuple[Case, ...]:
    """A canary or shadow against production, from the serving job's comparison figures."""
    w = {"window": "1h"}
    canary = {**LLM, "model_version": "7b-v3", **w, "variant": "canary"}
    shadow = {**LLM, "model_version": "7b-v4", **w, "variant": "shadow"}
    prod_p95 = {**LLM, **w, "variant": "production", "quantile": "0.95"}
    prod = {**LLM, **w, "variant": "production"}

    def rows(labels: Mapping[str, str], n: int) -> dict[str, str]:
        samples = {**labels, "metric": "serving"}
        return {series(WINDOW_SAMPLES.name, samples): f"{n}x40"}

    latency, errors = VARIANT_LATENCY_P95_DELTA_SECONDS.name, VARIANT_ERROR_RATIO_DELTA.name
    drift = {"method": "ks"}
    return (
        Case(
            "a canary 300 ms slower than production's 200 ms p95 asks for a rollback after 10m",
            "MLVariantLatencyWorse",
            {
                series(latency, canary): "0.3x40",
                series(PREDICTION_LATENCY_SECONDS.name, prod_p95): "0.2x40",
                **rows(canary, 500),
            },
            (("5m", ()), ("20m", (Expect(canary, 0.3),))),
        ),
        Case(
            "variant latency stays quiet under 50% slower, under 50 ms slower, on few rows",
            "MLVariantLatencyWorse",
            {
                # 80 ms above a 200 ms p95: 40%
                series(latency, canary): "0.08x40",
                series(PREDICTION_LATENCY_SECONDS.name, prod_p95): "0.2x40",
                **rows(canary, 500),
                # 300 ms above, on 40 predictions
                series(latency, shadow): "0.3x40",
                **rows(shadow, 40),
            },
            (("30m", ()),),
        ),
        Case(
            "variant latency stays quiet for a 40 ms difference on a fast model",
            "MLVariantLatencyWorse",
            {
                series(latency, canary): "0.04x40",
                series(PREDICTION_LATENCY_SECONDS.name, prod_p95): "0.02x40",
                **rows(canary, 500),
            },
            (("30m", ()),),
        ),
        Case(
            "a canary failing 3 points more than production's 1% asks for a rollback",
            "MLVariantErrorsWorse",
            {
                series(errors, canary): "0.03x40",
                series(PREDICTION_ERROR_RATIO.name, prod): "0.01x40",
                **rows(canary, 500),
            },
            (("5m", ()), ("20m", (Expect(canary, 0.03),))),
        ),
        Case(
            "variant errors stay quiet under twice production's and under 1 point more",
            "MLVariantErrorsWorse",
            {
                # 1.5 points above production's 2%: not twice it
                series(errors, canary): "0.015x40",
                series(PREDICTION_ERROR_RATIO.name, prod): "0.02x40",
                **rows(canary, 500),
                series(errors, {**shadow, "model": "fraud"}): "0.005x40",
                series(PREDICTION_ERROR_RATIO.name, {**prod, "model": "fraud"}): "0x40",
                **rows({**shadow, "model": "fraud"}, 500),
            },
            (("30m", ()),),
        ),
        Case(
            "a canary whose predictions drifted from production's asks for a rollback",
            "MLVariantPredictionDrift",
            {
                series(VARIANT_PREDICTION_DRIFT_SCORE.name, {**canary, **drift}): "0.42x40",
                series(VARIANT_PREDICTION_DRIFT_DETECTED.name, {**canary, **drift}): "1x40",
                series(VARIANT_PREDICTION_DRIFT_SCORE.name, {**shadow, **drift}): "0.08x40",
                series(VARIANT_PREDICTION_DRIFT_DETECTED.name, {**shadow, **drift}): "0x40",
            },
            (("5m", ()), ("20m", (Expect({**canary, **drift}, 0.42),))),
        ),
        Case(
            "variant prediction drift stays quiet without a drift verdict",
            "MLVariantPredictionDrift",
            {series(VARIANT_PREDICTION_DRIFT_SCORE.name, {**canary, **drift}): "0.42x40"},
            (("30m", ()),),
        ),
    )


def _event(labels: Mapping[str, str], kind: str) -> str:
    event = {**labels, "window": "1h", "event": kind}
    return series(DEPLOYMENT_EVENT_TIMESTAMP_SECONDS.name, event)


def _rollback_cases() -> tuple[Case, ...]:
    """Events as the serving job exports them: the value is the event's Unix time (the tests
    start at 0)."""
    ok = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "ok"})
    bad = series(PREDICTIONS_TOTAL.name, {**FRAUD, "status": "error"})
    prod = {**FRAUD, "variant": "production"}
    canary = {**FRAUD, "variant": "canary"}
    slos = objectives("fraud", availability=0.999, latency=0.99, samples=240)
    rolled_back_at_30m = {_event(prod, "rolled_back"): "_x30 1800x210"}
    return (
        Case(
            "5% errors 20 minutes after a rollback page: the rollback did not help",
            "MLRollbackStillFailing",
            {**slos, ok: "0+95x120", bad: "0+5x120", **rolled_back_at_30m},
            (("40m", ()), ("60m", (Expect({"model": "fraud", "slo": "availability"}, 0.05),))),
        ),
        Case(
            "rollback still failing stays quiet once the errors stopped after the rollback",
            "MLRollbackStillFailing",
            {**slos, ok: "0+95x120", bad: "0+5x35 175x85", **rolled_back_at_30m},
            (("60m", ()),),
        ),
        Case(
            "rollback still failing stays quiet two hours after the rollback",
            "MLRollbackStillFailing",
            {**slos, ok: "0+95x240", bad: "0+5x240", _event(prod, "rolled_back"): "600x240"},
            (("200m", ()),),
        ),
        Case(
            "a rollback without a model load 15 minutes later opens a ticket (loads before it "
            "do not count, no load at all fires too)",
            "MLRollbackNotLoaded",
            {
                _event(prod, "model_loaded"): "300x60",
                _event(prod, "rolled_back"): "_x10 600x50",
                _event(canary, "rolled_back"): "_x10 600x50",
            },
            (
                ("20m", ()),
                (
                    "30m",
                    (
                        Expect({"model": "fraud", "variant": "production"}, 1200),
                        Expect({"model": "fraud", "variant": "canary"}, 1200),
                    ),
                ),
            ),
        ),
        Case(
            "rollback not loaded stays quiet once the model loaded after the rollback",
            "MLRollbackNotLoaded",
            {
                _event(prod, "rolled_back"): "_x10 600x50",
                _event(prod, "model_loaded"): "_x15 900x45",
            },
            (("30m", ()), ("50m", ())),
        ),
    )


def _latency_spike_cases() -> tuple[Case, ...]:
    """Hourly p95 and traffic of llm's production every 5 minutes; a day is 288 samples."""
    prod = {**LLM, "window": "1h", "variant": "production"}
    p95 = series(PREDICTION_LATENCY_SECONDS.name, {**prod, "quantile": "0.95"})
    rps = series(PREDICTIONS_PER_SECOND.name, prod)
    spike = {"model": "llm", "variant": "production"}
    return (
        Case(
            "p95 of 600 ms at peak traffic, three times the 200 ms of the same hour yesterday",
            "MLLatencySpikeAtPeak",
            {p95: "0.2x300 0.6x30", rps: "10x330"},
            (("1500m", ()), ("1530m", (Expect(spike, 0.6),))),
            interval="5m",
        ),
        Case(
            "the same spike off-peak (2 req/s against a peak of 10) stays quiet",
            "MLLatencySpikeAtPeak",
            {p95: "0.2x300 0.6x30", rps: "10x290 2x40"},
            (("1530m", ()),),
            interval="5m",
        ),
        Case(
            "a p95 as slow as the same hour last week stays quiet (a weekly batch hour)",
            "MLLatencySpikeAtPeak",
            {p95: "0.2x11 0.5x12 0.2x1993 0.6x20", rps: "10x2040"},
            (("10140m", ()),),
            interval="5m",
        ),
    )


def _skew_cases() -> tuple[Case, ...]:
    """fraud 3.2.0 first seen at 130m (every 5 minutes), llm 7b-v3 deployed at 100m after
    serving shadow traffic for long; fraud 3.1.0 is old."""
    old = {**FRAUD, "model_version": "3.1.0"}
    new = FRAUD
    deployed = {**LLM, "model_version": "7b-v3"}

    def drifting(labels: Mapping[str, str], since: int, rows: int = 500) -> dict[str, str]:
        gap = f"_x{since} " if since else ""
        window = {**labels, "window": "1h"}
        return {
            series(PREDICTIONS_TOTAL.name, {**labels, "status": "ok"}): f"{gap}0+100x60",
            series(DATASET_DRIFT_SHARE.name, window): f"{gap}0.5x60",
            series(WINDOW_SAMPLES.name, {**window, "metric": "drift"}): f"{gap}{rows}x60",
        }

    return (
        Case(
            "drift in the first hours of a new or newly deployed version asks for a rollback; "
            "an old version's drift does not",
            "MLDeploySkew",
            {
                **drifting(old, 0),
                **drifting(new, 26),
                **drifting(deployed, 0),
                _event({**deployed, "variant": "production"}, "deployed"): "_x20 6000x60",
            },
            (
                # a TSDB younger than 2h would see every version as new: 3.1.0 is older here
                ("125m", (Expect({**deployed, "window": "1h"}, 0.5),)),
                (
                    "150m",
                    (
                        Expect({**new, "window": "1h"}, 0.5),
                        Expect({**deployed, "window": "1h"}, 0.5),
                    ),
                ),
                ("280m", ()),
            ),
            interval="5m",
        ),
        Case(
            "deploy skew stays quiet on too few rows",
            "MLDeploySkew",
            drifting(new, 26, rows=50),
            (("150m", ()),),
            interval="5m",
        ),
    )


# dcgm-exporter's labels (its metrics template): DCGM_FI_DEV_XID_ERRORS carries the code as
# err_code/err_msg attributes, DCGM_EXP_XID_ERRORS_COUNT as xid; MIG adds GPU_I_PROFILE/GPU_I_ID,
# the Kubernetes pod mapping pod/namespace/container.
XID_GPU = {
    "gpu": "0",
    "UUID": "GPU-0b",
    "pci_bus_id": "00000000:3B:00.0",
    "device": "nvidia0",
    "modelName": "NVIDIA L4",
    "hostname": "node-b",
    "DCGM_FI_DRIVER_VERSION": "550.54.15",
}
XID_MIG = {
    **XID_GPU,
    "UUID": "GPU-0a",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "hostname": "node-a",
    "GPU_I_PROFILE": "3g.40gb",
    "namespace": "serving",
    "container": "triton",
}
XID_MESSAGES = {0: "No Error", 48: "Double Bit ECC Error", 79: "GPU has fallen off the bus"}


def xid(labels: Mapping[str, str], code: int) -> dict[str, str]:
    return {**labels, "err_code": str(code), "err_msg": XID_MESSAGES[code]}


def _xid_cases() -> tuple[Case, ...]:
    gauge, count = "DCGM_FI_DEV_XID_ERRORS", "DCGM_EXP_XID_ERRORS_COUNT"
    mig1 = {**XID_MIG, "GPU_I_ID": "1", "pod": "triton-0"}
    mig2 = {**XID_MIG, "GPU_I_ID": "2", "pod": "triton-1"}
    counted = {**XID_GPU, "xid": "79", "window_size_in_ms": "300000"}
    return (
        Case(
            "a new XID opens a ticket at once (its err_code and err_msg kept)",
            "GPUXidError",
            {
                series(gauge, xid(XID_GPU, 0)): "0x10 stale",
                series(gauge, xid(XID_GPU, 79)): "_x10 79x20",
            },
            (("5m", ()), ("12m", (Expect(_gpu(xid(XID_GPU, 79)), 79),))),
        ),
        Case(
            "the XID the gauge keeps holding resolves after 30m instead of firing until a restart",
            "GPUXidError",
            {
                series(gauge, xid(XID_GPU, 0)): "0x10 stale",
                series(gauge, xid(XID_GPU, 79)): "_x10 79x60",
            },
            (("35m", (Expect(_gpu(xid(XID_GPU, 79)), 79),)), ("45m", ())),
        ),
        Case(
            "a second, different XID on the same GPU fires again",
            "GPUXidError",
            {
                series(gauge, xid(XID_GPU, 79)): "79x50 stale",
                series(gauge, xid(XID_GPU, 48)): "_x50 48x10",
            },
            (("45m", ()), ("55m", (Expect(_gpu(xid(XID_GPU, 48)), 48),))),
        ),
        Case(
            "an exporter restart, which resets the gauge to 0, does not fire",
            "GPUXidError",
            {
                series(gauge, xid(XID_GPU, 79)): "79x40 stale",
                series(gauge, xid(XID_GPU, 0)): "_x40 0x20",
            },
            (("50m", ()),),
        ),
        Case(
            "under MIG only the GPU instance that reported fires, with its pod and namespace",
            "GPUXidError",
            {
                series(gauge, xid(mig1, 0)): "0x30",
                series(gauge, xid(mig2, 0)): "0x10 stale",
                series(gauge, xid(mig2, 79)): "_x10 79x20",
            },
            (("5m", ()), ("15m", (Expect(_gpu(xid(mig2, 79)), 79),))),
        ),
        Case(
            "a repeat of the same XID is seen through DCGM_EXP_XID_ERRORS_COUNT where enabled",
            "GPUXidError",
            {series(gauge, xid(XID_GPU, 79)): "79x60", series(count, counted): "0x20 2x5 0x20"},
            (("10m", ()), ("22m", (Expect(_gpu({**counted, "err_code": "79"}), 2),)), ("40m", ())),
        ),
    )


def _service_cases() -> tuple[Case, ...]:
    failures, last = JOB_FAILURES_TOTAL.name, JOB_LAST_SUCCESS_TIMESTAMP_SECONDS.name
    scraped = {"job": "ml-monitor", "instance": "ml-monitor:8000"}
    rows = series(INGEST_ROWS_TOTAL.name, {"kind": "predictions"})
    return (
        Case(
            "job failing fires whether the job label was honoured or exported",
            "MLMonitorJobFailing",
            {
                series(failures, {**scraped, "exported_job": "drift"}): "0+1x60",
                series(failures, {"job": "quality"}): "0+1x60",
                series(failures, {**scraped, "exported_job": "maintenance"}): "0x60",
            },
            (("3m", ()), ("60m", (Expect({"job": "drift"}, 60), Expect({"job": "quality"}, 60)))),
        ),
        Case(
            "job stale fires for a job without success for 30m, not for a healthy one",
            "MLMonitorJobStale",
            {
                series(last, {**scraped, "exported_job": "drift"}): "0x60",
                series(last, {**scraped, "exported_job": "quality"}): "0+60x60",
            },
            (("20m", ()), ("40m", (Expect({"job": "drift"}, 2400),))),
        ),
        Case(
            "dead webhook deliveries open a ticket",
            "MLMonitorWebhookDeliveriesDead",
            {
                series(WEBHOOK_DELIVERIES_TOTAL.name, {"outcome": "dead"}): "0x10 1x20",
                series(WEBHOOK_DELIVERIES_TOTAL.name, {"outcome": "delivered"}): "0+5x30",
            },
            (("5m", ()), ("20m", (Expect({}, 1),))),
        ),
        Case(
            "ingest stalled fires 30m after the last row",
            "MLIngestStalled",
            {rows: "0+100x60 6000+0x90"},
            (("70m", ()), ("120m", (Expect({}),))),
        ),
        Case(
            "ingest stalled stays quiet while rows arrive",
            "MLIngestStalled",
            {rows: "0+100x150"},
            (("120m", ()),),
        ),
        Case(
            "monitor down fires after 5m of failed scrapes of the ml-monitor job only",
            "MLMonitorDown",
            {
                series("up", scraped): "1x10 0x20",
                series("up", {"job": "other", "instance": "other:9100"}): "0x30",
            },
            (("12m", ()), ("20m", (Expect(scraped),))),
        ),
    )


CASES_BY_FILE: dict[str, tuple[Case, ...]] = {
    "model": (
        *_drift_cases(),
        *_multivariate_cases(),
        *_performance_cases(),
        *_estimated_cases(),
    ),
    "slo": _burn_cases(),
    "serving": _serving_cases(),
    "rollout": (*_variant_cases(), *_rollback_cases(), *_latency_spike_cases(), *_skew_cases()),
    "gpu": (*_gpu_cases(), *_xid_cases()),
    "service": _service_cases(),
}

EXPR_CASES_BY_FILE: dict[str, tuple[ExprCase, ...]] = {
    "slo": _current_burn_cases(),
    "slo-budget": _budget_cases(),
}

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_PRINTF = re.compile(r'printf "(%\.\d+[fg])" \$value')


def expand(template: str, labels: Mapping[str, str], value: float) -> str:
    """The few Prometheus template forms the rules use, expanded as Prometheus would."""

    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("$labels."):
            return labels.get(expr.removeprefix("$labels."), "")
        if expr == "$value | humanizePercentage":
            return f"{value * 100:.4g}%"
        printf = _PRINTF.fullmatch(expr)
        if printf:
            return printf.group(1) % value
        raise ValueError(f"template {expr!r} is not one the test generator can expand")

    return _TEMPLATE.sub(one, template)
