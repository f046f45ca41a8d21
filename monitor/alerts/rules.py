"""The Prometheus recording and alerting rules, as data.

Thresholds come from the same settings objects the jobs use (``DriftSettings``, ``SloSettings``
in ``monitor.schemas``), so the rules follow the verdicts the service computes. Error-budget
alerts are multi-window, multi-burn-rate alerts (Google SRE workbook, chapter "Alerting on
SLOs"), on the counters ``ml_predictions_total`` and ``ml_predictions_over_latency_slo_total``,
and written as Sloth writes them: against each model's own objective, the ``ml_slo_objective``
series the serving job exports from the model's ``slo`` configuration, so a 99 % model and a
99.9 % model each burn their own budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from monitor.alerts import promql
from monitor.alerts.promql import SLI, number, scheduler_job, selector, sli_ratio, sli_record
from monitor.catalogue import (
    COST_PER_MILLION_PREDICTIONS,
    DATASET_DRIFT_SHARE,
    DEPLOYMENT_EVENT_TIMESTAMP_SECONDS,
    ESTIMATED_PERFORMANCE,
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
from monitor.schemas import DriftSettings, SloSettings
from monitor.windows import parse_window

Severity = Literal["page", "ticket", "warning"]
Ratio = Callable[[SLI, str], str]
Limit = Callable[[SLI, float], str]

DEFAULT_COST_BUDGET_PER_MILLION = COST_PER_MILLION_PREDICTIONS.threshold
"""Cost per 1M predictions above which MLCostAboveBudget fires (currency USD, 24h window)."""
DEFAULT_RUNBOOK_BASE = "https://github.com/ml-monitor/ml-monitor/blob/main/docs/alerts.md"
RETRAIN = "retrain"
COST_BUDGET_RECORD = "ml_monitor:cost_per_million_predictions:budget"
PERFORMANCE_BASELINE_RECORD = "model_version:ml_model_performance:avg_over_time_7d"
JOB_FAILURES_RECORD = "job:monitor_job_failures:increase1h"
JOB_LAST_SUCCESS_RECORD = "job:monitor_job_last_success_timestamp_seconds:max"

SLO_OBJECTIVE_RECORD = "model:ml_slo_objective:ratio"
SLO_BUDGET_RECORD = "model:ml_slo_error_budget:ratio"
# Sloth's burn-rate and budget records (slo:current_burn_rate:ratio, slo:period_burn_rate:ratio,
# slo:period_error_budget_remaining:ratio), per model and slo.
SLO_CURRENT_BURN_RECORD = "model:ml_slo_current_burn_rate:ratio"
SLO_PERIOD_BURN_RECORD = "model:ml_slo_period_burn_rate:ratio"
SLO_BUDGET_REMAINING_RECORD = "model:ml_slo_period_error_budget_remaining:ratio"
SLO_OF: Mapping[SLI, str] = {"errors": "availability", "slow": "latency"}
"""The ``slo`` label of the objective each SLI is measured against."""

SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (burn-rate factor, long window, short window). The SRE workbook's multiwindow table pages at
# 14.4x over 1h/5m and 6x over 6h/30m and tickets at 1x over 3d/6h; the 3x 1d/2h ticket row is
# Sloth's addition, which we follow.
PAGE_BURN = ((14.4, "1h", "5m"), (6.0, "6h", "30m"))
TICKET_BURN = ((3.0, "1d", "2h"), (1.0, "3d", "6h"))


@dataclass(frozen=True)
class RuleSettings:
    """Everything the rules depend on; the defaults are what `monitor alerts render` writes."""

    drift: DriftSettings = field(default_factory=DriftSettings)
    slo: SloSettings = field(default_factory=SloSettings)
    """The defaults the dashboards draw; the burn-rate alerts use each model's own objective."""
    cost_budgets: Mapping[str, float] = field(
        default_factory=lambda: {"USD": DEFAULT_COST_BUDGET_PER_MILLION}
    )
    performance_drop: float = MODEL_PERFORMANCE.threshold
    model_load_seconds: float = MODEL_LOAD_SECONDS.threshold
    gpu_memory_used: float = 0.95
    gpu_utilization_percent: float = 95.0
    kv_cache_usage: float = 0.95
    xid_window: str = "30m"
    """How long GPUXidError fires after a new XID."""
    slo_period: str = "30d"
    """The SLO period the error budget is counted over (Sloth's default)."""
    slo_budget_interval: str = "5m"
    """How often the period records are evaluated: a rate over the whole period is not cheap."""
    rollout_variants: str = "canary|shadow"
    """Variants judged against production (a regex on ``variant``)."""
    variant_latency_increase: float = 0.5
    """A variant's p95 this much above production's (50 %: 1.5 times) is worse..."""
    variant_latency_floor_seconds: float = 0.05
    """...and at least this many seconds above it."""
    variant_error_ratio_increase: float = 0.01
    """A variant failing this much more often than production (and at least twice as often)."""
    rollback_recovery_seconds: int = 600
    """After a rollback, how long the SLOs have to recover before MLRollbackStillFailing."""
    rollback_watch_seconds: int = 7200
    """How long after a rollback it is watched."""
    rollback_load_seconds: int = 900
    """A rollback with no model_loaded event this long after it is MLRollbackNotLoaded."""
    latency_spike_factor: float = 2.0
    """p95 this many times its same-hour baseline (a day and a week ago) is a spike..."""
    latency_spike_floor_seconds: float = 0.1
    """...when it is also at least this slow..."""
    peak_traffic_share: float = 0.8
    """...and the traffic is at least this share of the day's peak."""
    new_version_age: str = "2h"
    """A version younger than this is checked for training-serving skew (its first window)."""
    job_failures_per_hour: int = 2
    job_stale_seconds: int = 1800
    service_job: str = "ml-monitor"
    runbook_base: str = DEFAULT_RUNBOOK_BASE


@dataclass(frozen=True)
class Record:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str
    action: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = {"severity": self.severity}
        if self.action:
            labels["action"] = self.action
        return labels


@dataclass(frozen=True)
class Group:
    name: str
    file: str
    rules: tuple[Record | Alert, ...]
    interval: str | None = None
    """Prometheus' evaluation interval for the group (None: the global one)."""
    needs: tuple[str, ...] = ()
    """Rule files whose records this group reads (loaded with it by its promtool tests)."""
    test_interval: str = "1m"
    """promtool's evaluation interval for this group's tests."""

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(r for r in self.rules if isinstance(r, Alert))


def recorded_ratio(sli: SLI, window: str) -> str:
    return sli_record(sli, window)


def inline_ratio(sli: SLI, window: str) -> str:
    return sli_ratio(sli, window)


def recorded_limit(sli: SLI, factor: float) -> str:  # noqa: ARG001 (a Limit, like inline_limit)
    """``factor`` times each model's budget: the SLI records carry the ``slo`` they count
    against, so they match the budget record on (model, slo)."""
    return f"on (model, slo) ({number(factor)} * {SLO_BUDGET_RECORD})"


def inline_limit(sli: SLI, factor: float) -> str:
    """:func:`recorded_limit` without recording rules (for Grafana-managed rules)."""
    return f"on (model) ({number(factor)} * (1 - {_objective(sli)}))"


def _objective(sli: SLI | None = None) -> str:
    """Each model's objective per ``slo``: the same on every window's row, so any will do."""
    matcher = f'slo="{SLO_OF[sli]}"' if sli else ""
    return f"max by (model, slo) ({selector(SLO_OBJECTIVE.name, matcher)})"


@dataclass(frozen=True)
class BurnSources:
    """Where a burn-rate alert reads its SLI ratio and its limit from."""

    ratio: Ratio = recorded_ratio
    limit: Limit = recorded_limit


RECORDED = BurnSources()
INLINE = BurnSources(inline_ratio, inline_limit)


def _samples_guard(kind: str, settings: RuleSettings) -> str:
    samples = selector(WINDOW_SAMPLES.name, f'metric="{kind}"')
    return f"on (model, model_version, window) {samples} >= {settings.drift.min_samples}"


def drift_alerts(settings: RuleSettings) -> tuple[Alert, ...]:
    guard = _samples_guard("drift", settings)
    share = settings.drift.dataset_drift_share
    return (
        Alert(
            name="MLFeatureDrift",
            expr=f"{FEATURE_DRIFT_DETECTED} == 1\nand {guard}",
            for_="30m",
            severity="warning",
            action=RETRAIN,
            summary="Feature {{ $labels.feature }} of {{ $labels.model }} "
            "{{ $labels.model_version }} drifted ({{ $labels.window }} window)",
            description="The {{ $labels.method }} test has flagged {{ $labels.feature }} as "
            "drifted from the reference for 30 minutes in the {{ $labels.window }} window, "
            f"on at least {settings.drift.min_samples} rows.",
        ),
        Alert(
            name="MLDatasetDrift",
            expr=f"{DATASET_DRIFT_SHARE} >= {number(share)}\nand {guard}",
            for_="30m",
            severity="ticket",
            action=RETRAIN,
            summary="Dataset drift on {{ $labels.model }} {{ $labels.model_version }} "
            "({{ $labels.window }} window)",
            description="{{ $value | humanizePercentage }} of the features of "
            "{{ $labels.model }} {{ $labels.model_version }} drifted in the "
            f"{{{{ $labels.window }}}} window (dataset drift from {share:.0%}).",
        ),
    )


def multivariate_alerts(settings: RuleSettings) -> tuple[Alert, ...]:
    """Drift of the features together (either method) and drift inside a segment. A segment's
    verdict exists only on at least ``min_samples`` rows and is already Benjamini-Hochberg
    corrected across segments and features, so its rule needs no guard of its own."""
    guard = _samples_guard("multivariate", settings)
    return (
        Alert(
            name="MLMultivariateDrift",
            expr=f"{MULTIVARIATE_DRIFT_DETECTED} == 1\nand {guard}",
            for_="30m",
            severity="warning",
            action=RETRAIN,
            summary="The features of {{ $labels.model }} {{ $labels.model_version }} drifted "
            "together ({{ $labels.method }}, {{ $labels.window }} window)",
            description="The {{ $labels.method }} check tells the {{ $labels.window }} window "
            "from the reference for 30 minutes, on a sample of at least "
            f"{settings.drift.min_samples} rows: the features move together differently even "
            "where no single one drifted. The top features are in GET /v1/models/"
            "{{ $labels.model }}/drift and in monitor report.",
        ),
        Alert(
            name="MLSegmentDrift",
            expr=f"{SEGMENT_DRIFT_DETECTED} == 1",
            for_="30m",
            severity="warning",
            action=RETRAIN,
            summary="{{ $labels.feature }} drifted inside {{ $labels.segment }} for "
            "{{ $labels.model }} {{ $labels.model_version }} ({{ $labels.window }} window)",
            description="Against the same segment of the reference, {{ $labels.feature }} "
            "drifted inside {{ $labels.segment }} for 30 minutes ({{ $labels.method }} test, "
            "Benjamini-Hochberg adjusted across segments and features).",
        ),
    )


def _burn_expr(sli: SLI, windows: tuple[tuple[float, str, str], ...], sources: BurnSources) -> str:
    ratio = sources.ratio
    branches = []
    for factor, long, short in windows:
        limit = sources.limit(sli, factor)
        branches.append(
            f"(\n  {ratio(sli, long)}\n    > {limit}\nand\n  {ratio(sli, short)}\n    > {limit}\n)"
        )
    return "\nor\n".join(branches)


def burn_alerts(sli: SLI, sources: BurnSources = RECORDED) -> tuple[Alert, ...]:
    """The page (fast burn) and ticket (slow burn) alerts for one SLI, each model against its
    own objective."""
    if sli == "errors":
        what, prefix = "failed", "MLErrorBudgetBurn"
    else:
        what, prefix = "were slower than its SLO latency", "MLLatencyBudgetBurn"
    kind = SLO_OF[sli]
    objective = f"the {kind} objective of {{{{ $labels.model }}}} ({SLO_OBJECTIVE})"
    return (
        Alert(
            name=f"{prefix}Fast",
            expr=_burn_expr(sli, PAGE_BURN, sources),
            for_="2m",
            severity="page",
            summary=f"{{{{ $labels.model }}}} is burning its {kind} error budget fast",
            description=f"{{{{ $value | humanizePercentage }}}} of predictions {what} over the "
            f"last 1h or 6h: at least 6 times the rate {objective} allows. "
            "The 30-day budget is gone in days at this rate.",
        ),
        Alert(
            name=f"{prefix}Slow",
            expr=_burn_expr(sli, TICKET_BURN, sources),
            for_="15m",
            severity="ticket",
            summary=f"{{{{ $labels.model }}}} is slowly burning its {kind} error budget",
            description=f"{{{{ $value | humanizePercentage }}}} of predictions {what} over the "
            f"last 1d or 3d: at least the rate {objective} allows.",
        ),
    )


def estimated_drop_alert(settings: RuleSettings) -> Alert:
    """The estimate's band entirely on the wrong side of the model's own bound, which the
    estimation job exports from ``performance.min`` / ``performance.max`` (as Sloth reads each
    model's objective from a series, not from the rule)."""
    floor = f"max by (model, metric) ({PERFORMANCE_FLOOR})"
    ceiling = f"max by (model, metric) ({PERFORMANCE_CEILING})"
    band = (
        f"(\n  {ESTIMATED_PERFORMANCE_UPPER}\n    < on (model, metric) group_left () {floor}\n"
        "  or\n"
        f"  {ESTIMATED_PERFORMANCE_LOWER}\n    > on (model, metric) group_left () {ceiling}\n)"
    )
    return Alert(
        name="MLEstimatedPerformanceDrop",
        expr=f"{band}\nand {_samples_guard(ESTIMATED_PERFORMANCE.result, settings)}",
        for_="30m",
        severity="ticket",
        action=RETRAIN,
        summary="Estimated {{ $labels.metric }} of {{ $labels.model }} "
        "{{ $labels.model_version }} is past its configured bound ({{ $labels.window }} window)",
        description="Without labels, the {{ $labels.metric }} of {{ $labels.model }} "
        "{{ $labels.model_version }} is estimated (CBPE / DLE) to be past the model's "
        "performance.min / performance.max in the {{ $labels.window }} window: even the "
        'favourable end of its 3-sd band, {{ printf "%.3g" $value }}, is on the wrong side, '
        f"on at least {settings.drift.min_samples} predictions.",
    )


def model_quality_group(settings: RuleSettings) -> Group:
    drop = settings.performance_drop
    perf = MODEL_PERFORMANCE.name
    worse = (
        f'(\n  {perf}{{metric=~"{promql.PERFORMANCE_HIGHER_IS_BETTER}"}}\n'
        f"    < {number(1 - drop)} * {PERFORMANCE_BASELINE_RECORD}\n"
        "  or\n"
        f'  {perf}{{metric=~"{promql.PERFORMANCE_LOWER_IS_BETTER}"}}\n'
        f"    > {number(1 + drop)} * {PERFORMANCE_BASELINE_RECORD}\n)"
    )
    return Group(
        name="ml-monitor-model-quality",
        file="model",
        rules=(
            Record(PERFORMANCE_BASELINE_RECORD, f"avg_over_time({perf}[7d])"),
            *drift_alerts(settings),
            *multivariate_alerts(settings),
            Alert(
                name="MLPerformanceDrop",
                expr=f"{worse}\nand {_samples_guard('performance', settings)}",
                for_="1h",
                severity="ticket",
                action=RETRAIN,
                summary="{{ $labels.metric }} of {{ $labels.model }} {{ $labels.model_version }} "
                "dropped ({{ $labels.window }} window)",
                description='{{ $labels.metric }} is {{ printf "%.3g" $value }} in the '
                f"{{{{ $labels.window }}}} window, more than {drop:.0%} worse than its 7-day "
                f"average, on at least {settings.drift.min_samples} labelled predictions.",
            ),
            estimated_drop_alert(settings),
        ),
    )


def slo_group() -> Group:
    records = tuple(
        Record(sli_record(sli, window), sli_ratio(sli, window), {"slo": SLO_OF[sli]})
        for sli in get_args(SLI)
        for window in SLI_WINDOWS
    )
    objectives = (
        Record(SLO_OBJECTIVE_RECORD, _objective()),
        Record(SLO_BUDGET_RECORD, f"1 - {SLO_OBJECTIVE_RECORD}"),
    )
    return Group(
        name="ml-monitor-slo",
        file="slo",
        rules=(
            *records,
            *objectives,
            *(_burn_rate_record(SLO_CURRENT_BURN_RECORD, sli, "5m") for sli in get_args(SLI)),
            *burn_alerts("errors"),
            *burn_alerts("slow"),
        ),
    )


def _burn_rate_record(name: str, sli: SLI, window: str) -> Record:
    """How many times faster than its objective allows a model spends its budget over
    ``window``: 1 spends exactly the period's budget, 14.4 pages."""
    return Record(name, f"{sli_record(sli, window)}\n/ on (model, slo) {SLO_BUDGET_RECORD}")


def slo_budget_group(settings: RuleSettings) -> Group:
    """Sloth's period records: each model's error ratio over the SLO period, its burn rate
    against the model's own budget, and the budget left (1 - burn rate: 1 untouched, 0 spent,
    below 0 overspent). The ratio is of the period's counters (bad / all predictions), not an
    average of shorter ratios, so a busy hour weighs what it served."""
    period = settings.slo_period
    ratios = tuple(
        Record(sli_record(sli, period), sli_ratio(sli, period), {"slo": SLO_OF[sli]})
        for sli in get_args(SLI)
    )
    burn = tuple(_burn_rate_record(SLO_PERIOD_BURN_RECORD, sli, period) for sli in get_args(SLI))
    return Group(
        name="ml-monitor-slo-budget",
        file="slo-budget",
        rules=(
            *ratios,
            *burn,
            Record(SLO_BUDGET_REMAINING_RECORD, f"1 - {SLO_PERIOD_BURN_RECORD}"),
        ),
        interval=settings.slo_budget_interval,
        needs=("slo",),
        test_interval="6h",
    )


def _throughput_alerts() -> tuple[Alert, ...]:
    now = f"sum by (model) (rate({PREDICTIONS_TOTAL}[30m]))"
    yesterday = f"sum by (model) (rate({PREDICTIONS_TOTAL}[30m] offset 1d))"
    return (
        Alert(
            name="MLThroughputDrop",
            expr=f"{now} < 0.5 * {yesterday}\nand {yesterday} > 0.1",
            for_="30m",
            severity="warning",
            summary="{{ $labels.model }} serves less than half of yesterday's traffic",
            description='{{ $labels.model }} stored {{ printf "%.2f" $value }} predictions/s '
            "over the last 30 minutes, less than half of the same time yesterday.",
        ),
        Alert(
            name="MLPredictionsStopped",
            expr=f"sum by (model) (rate({PREDICTIONS_TOTAL}[15m])) == 0\n"
            f"and sum by (model) (rate({PREDICTIONS_TOTAL}[1d])) > 0",
            for_="15m",
            severity="ticket",
            summary="No predictions from {{ $labels.model }} for 30 minutes",
            description="{{ $labels.model }} sent predictions during the last day but none "
            "in the last 30 minutes. Check the model server and its logging to ml-monitor.",
        ),
    )


def serving_group(settings: RuleSettings) -> Group:
    budgets = tuple(
        Record(COST_BUDGET_RECORD, f"vector({number(amount)})", {"currency": currency})
        for currency, amount in sorted(settings.cost_budgets.items())
    )
    return Group(
        name="ml-monitor-serving",
        file="serving",
        rules=(
            *budgets,
            *_throughput_alerts(),
            Alert(
                name="MLModelLoadSlow",
                expr=f"{MODEL_LOAD_SECONDS} > {number(settings.model_load_seconds)}",
                for_="0m",
                severity="warning",
                summary="Loading {{ $labels.model }} {{ $labels.model_version }} "
                "({{ $labels.variant }}) is slow",
                description="The last load of {{ $labels.model }} {{ $labels.model_version }} "
                'took {{ printf "%.0f" $value }} s '
                f"(more than {settings.model_load_seconds:g} s).",
            ),
            Alert(
                name="MLCostAboveBudget",
                expr=f'{COST_PER_MILLION_PREDICTIONS}{{window="24h"}}\n'
                f"> on (currency) group_left () {COST_BUDGET_RECORD}",
                for_="1h",
                severity="ticket",
                summary="{{ $labels.model }} {{ $labels.model_version }} costs more per "
                "million predictions than budgeted",
                description="1M predictions of {{ $labels.model }} {{ $labels.model_version }} "
                'cost {{ printf "%.2f" $value }} {{ $labels.currency }} over the last 24h, '
                f"above the budget in the {COST_BUDGET_RECORD} rule.",
            ),
        ),
    )


def _new_xid(window: str) -> str:
    """A GPU (or MIG instance) whose XID changed to a non-zero code within ``window``, or, where
    dcgm-exporter has ``DCGM_EXP_XID_ERRORS_COUNT`` enabled, that counted one in its window.

    ``DCGM_FI_DEV_XID_ERRORS`` holds the last XID until the exporter restarts
    (NVIDIA/dcgm-exporter#500), and its ``err_code``/``err_msg`` labels change with it, so a new
    XID is a new series: the change is looked for with those labels aggregated away. A repeat of
    the same code leaves that gauge unchanged; only the count sees it (its ``xid`` label is
    copied to ``err_code``). The count is used only where the gauge has nothing new.
    """
    xid = "DCGM_FI_DEV_XID_ERRORS"
    code = f"max without (err_code, err_msg) ({xid})"
    changed = f"{xid} > 0\nand ignoring (err_code, err_msg)\nchanges({code}[{window}:1m]) > 0"
    counted = 'label_replace(DCGM_EXP_XID_ERRORS_COUNT > 0, "err_code", "$1", "xid", "(.+)")'
    return f"(\n{changed}\n)\nor on (UUID, GPU_I_ID)\n{counted}"


def gpu_group(settings: RuleSettings) -> Group:
    where = "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on {{ $labels.host }}"
    instance = "GPU {{ $labels.gpu_instance }} ({{ $labels.modelName }}) on {{ $labels.host }}"
    kv, waiting = "vllm:kv_cache_usage_perc", "vllm:num_requests_waiting"
    return Group(
        name="ml-monitor-gpu",
        file="gpu",
        rules=(
            Alert(
                name="GPUMemoryNearExhaustion",
                expr=promql.gpu_instance(promql.with_host(promql.framebuffer_in_use()))
                + f" > {number(settings.gpu_memory_used)}",
                for_="10m",
                severity="warning",
                summary=f"{instance} is running out of memory",
                description="{{ $value | humanizePercentage }} of the framebuffer of "
                f"{instance} is used or reserved.",
            ),
            Alert(
                name="GPUSaturated",
                expr=promql.with_host("avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m])")
                + f" > {number(settings.gpu_utilization_percent)}",
                for_="20m",
                severity="warning",
                summary=f"{where} is saturated",
                description=f"{where} has been more than "
                f"{settings.gpu_utilization_percent:g}% busy for 30 minutes "
                '({{ printf "%.0f" $value }}% over the last 10 minutes).',
            ),
            Alert(
                name="GPUXidError",
                expr=promql.with_host(_new_xid(settings.xid_window)),
                for_="0m",
                severity="ticket",
                summary=f"{where} reported XID {{{{ $labels.err_code }}}}",
                description=f"{where} reported XID {{{{ $labels.err_code }}}} in the last "
                f"{settings.xid_window} (the err_msg label names it where dcgm-exporter knows "
                "it). Look it up in NVIDIA's XID catalogue; 48, 63, 64, 74, 79, 94 and 95 call "
                "for draining the node.",
            ),
            Alert(
                name="VLLMKVCacheSaturated",
                expr=f"max by (model_name, instance) ({kv}) > {number(settings.kv_cache_usage)}\n"
                f"and on (model_name, instance) sum by (model_name, instance) ({waiting}) > 0",
                for_="10m",
                severity="warning",
                summary="vLLM KV cache of {{ $labels.model_name }} on {{ $labels.instance }} "
                "is full and requests queue",
                description="{{ $value | humanizePercentage }} of the KV cache is in use while "
                "requests wait: add replicas or lower max_num_seqs / max_model_len.",
            ),
        ),
    )


def service_group(settings: RuleSettings) -> Group:
    failures = scheduler_job(f"increase({JOB_FAILURES_TOTAL}[1h])")
    last_success = scheduler_job(JOB_LAST_SUCCESS_TIMESTAMP_SECONDS.name)
    return Group(
        name="ml-monitor-service",
        file="service",
        rules=(
            Record(JOB_FAILURES_RECORD, f"sum by (job) ({failures})"),
            Record(JOB_LAST_SUCCESS_RECORD, f"max by (job) ({last_success})"),
            Alert(
                name="MLMonitorJobFailing",
                expr=f"{JOB_FAILURES_RECORD} > {settings.job_failures_per_hour}",
                for_="5m",
                severity="ticket",
                summary="ml-monitor job {{ $labels.job }} keeps failing",
                description='The {{ $labels.job }} job failed {{ printf "%.0f" $value }} '
                "times in the last hour. Its figures are going stale; see the service log.",
            ),
            Alert(
                name="MLMonitorJobStale",
                expr=f"time() - {JOB_LAST_SUCCESS_RECORD} > {settings.job_stale_seconds}",
                for_="5m",
                severity="ticket",
                summary="ml-monitor job {{ $labels.job }} has not succeeded for a while",
                description="The last successful {{ $labels.job }} run was "
                '{{ printf "%.0f" $value }} s ago. Is the scheduler running '
                "(monitor serve without --no-scheduler)?",
            ),
            Alert(
                name="MLMonitorWebhookDeliveriesDead",
                expr=f'sum(increase({WEBHOOK_DELIVERIES_TOTAL}{{outcome="dead"}}[1h])) > 0',
                for_="0m",
                severity="ticket",
                summary="Retraining webhooks were given up",
                description='{{ printf "%.0f" $value }} webhook deliveries ran out of retries '
                "in the last hour: retraining was not triggered. Check the receiving URL and "
                "secret.",
            ),
            Alert(
                name="MLIngestStalled",
                expr=f"sum(rate({INGEST_ROWS_TOTAL}[15m])) == 0\n"
                f"and sum(rate({INGEST_ROWS_TOTAL}[1d])) > 0",
                for_="15m",
                severity="ticket",
                summary="ml-monitor stopped ingesting",
                description="No rows were ingested for 30 minutes although there were some "
                "during the last day.",
            ),
            Alert(
                name="MLMonitorDown",
                expr=f'up{{job="{settings.service_job}"}} == 0',
                for_="5m",
                severity="ticket",
                summary="Prometheus cannot scrape ml-monitor ({{ $labels.instance }})",
                description="{{ $labels.instance }} has not answered /metrics for 5 minutes: "
                "no drift, quality or serving figures are being exported.",
            ),
        ),
    )


ROLLBACK = "rollback"
EVENT_TS = DEPLOYMENT_EVENT_TIMESTAMP_SECONDS.name


def _last_event(kind: str, by: str = "model, variant") -> str:
    return f'max by ({by}) ({EVENT_TS}{{event="{kind}"}})'


def _variant_alerts(settings: RuleSettings) -> tuple[Alert, ...]:
    """A canary or shadow worse than production, from the serving job's comparison figures
    (variant minus production pooled over its versions, in the same window)."""
    variants = f'variant=~"{settings.rollout_variants}"'
    enough = (
        "on (model, model_version, window, variant) "
        f'{WINDOW_SAMPLES}{{metric="serving"}} >= {settings.drift.min_samples}'
    )
    production = 'variant="production"'
    prod_p95 = (
        f'max by (model, window) ({PREDICTION_LATENCY_SECONDS}{{{production}, quantile="0.95"}})'
    )
    prod_errors = f"max by (model, window) ({PREDICTION_ERROR_RATIO}{{{production}}})"
    latency = selector(VARIANT_LATENCY_P95_DELTA_SECONDS.name, variants)
    errors = selector(VARIANT_ERROR_RATIO_DELTA.name, variants)
    drift = selector(VARIANT_PREDICTION_DRIFT_SCORE.name, variants)
    what = "{{ $labels.model }} {{ $labels.model_version }} ({{ $labels.variant }})"
    increase = settings.variant_latency_increase
    floor = settings.variant_latency_floor_seconds
    return (
        Alert(
            name="MLVariantLatencyWorse",
            expr=f"{latency}\n  > on (model, window) group_left ()\n"
            f"  {number(increase)} * {prod_p95}\nand {latency} > {number(floor)}\nand {enough}",
            for_="10m",
            severity="ticket",
            action=ROLLBACK,
            summary=f"{what} is slower than production",
            description=f"p95 latency of {what} is "
            '{{ printf "%.3f" $value }} s above production\'s in the {{ $labels.window }} window '
            f"(more than {increase:.0%} above it and more than {floor * 1000:g} ms), on at least "
            f"{settings.drift.min_samples} predictions. Roll the {{{{ $labels.variant }}}} back.",
        ),
        Alert(
            name="MLVariantErrorsWorse",
            expr=f"{errors} > {number(settings.variant_error_ratio_increase)}\n"
            f"and {errors}\n  > on (model, window) group_left () {prod_errors}\nand {enough}",
            for_="10m",
            severity="ticket",
            action=ROLLBACK,
            summary=f"{what} fails more often than production",
            description="{{ $value | humanizePercentage }} more of the predictions of "
            f"{what} fail than of production's in the {{{{ $labels.window }}}} window (more than "
            f"{settings.variant_error_ratio_increase:.0%} more, and over twice production's "
            "error ratio). Roll the {{ $labels.variant }} back.",
        ),
        Alert(
            name="MLVariantPredictionDrift",
            expr=f"{drift}\nand on (model, model_version, window, variant, method)\n"
            f"{VARIANT_PREDICTION_DRIFT_DETECTED} == 1",
            for_="10m",
            severity="ticket",
            action=ROLLBACK,
            summary=f"Predictions of {what} differ from production's",
            description="The {{ $labels.method }} test finds the predictions of "
            f"{what} drifted from production's in the {{{{ $labels.window }}}} window "
            '(statistic {{ printf "%.3g" $value }}, both sides on enough predictions): the '
            "new version decides differently. Roll it back unless that was intended.",
        ),
    )


def _rollback_alerts(settings: RuleSettings) -> tuple[Alert, ...]:
    rolled_back = _last_event("rolled_back")
    since = f"time() - {_last_event('rolled_back', 'model')}"
    recovery, watch = settings.rollback_recovery_seconds, settings.rollback_watch_seconds
    missed = "\nor\n".join(
        f"{sli_record(sli, '5m')} > on (model, slo) {SLO_BUDGET_RECORD}" for sli in get_args(SLI)
    )
    wait = settings.rollback_load_seconds
    return (
        Alert(
            name="MLRollbackStillFailing",
            expr=f"(\n{missed}\n)\nand on (model)\n({since} > {recovery} < {watch})",
            for_="10m",
            severity="page",
            summary="{{ $labels.model }} still misses its {{ $labels.slo }} objective after a "
            "rollback",
            description="{{ $value | humanizePercentage }} of the predictions of "
            "{{ $labels.model }} missed its {{ $labels.slo }} objective over the last 5 "
            f"minutes, more than {recovery // 60} minutes after a rollback: the rollback did not "
            "fix it (or did not happen). Check what is serving, and the dependencies.",
        ),
        Alert(
            name="MLRollbackNotLoaded",
            expr=f"(time() - {rolled_back} > {wait} < 86400)\nand on (model, variant)\n"
            f"(\n  {rolled_back}\n  > on (model, variant)\n"
            f"  ({_last_event('model_loaded')} or 0 * {rolled_back})\n)",
            for_="0m",
            severity="ticket",
            summary="{{ $labels.model }} ({{ $labels.variant }}) has loaded no model since its "
            "rollback",
            description="{{ $labels.model }} ({{ $labels.variant }}) was rolled back "
            '{{ printf "%.0f" $value }} s ago and no model_loaded event has arrived since '
            f"(waiting {wait // 60} minutes): the rolled-back version may not be serving.",
        ),
    )


def _latency_spike_alert(settings: RuleSettings) -> Alert:
    by = "max by (model, variant)"
    p95 = f'{PREDICTION_LATENCY_SECONDS}{{quantile="0.95", window="1h"}}'
    then = " or ".join(
        f'label_replace({p95} offset {ago}, "baseline", "{ago}", "", "")' for ago in ("1d", "7d")
    )
    rps = f'sum by (model, variant) ({PREDICTIONS_PER_SECOND}{{window="1h"}})'
    factor, share = settings.latency_spike_factor, settings.peak_traffic_share
    return Alert(
        name="MLLatencySpikeAtPeak",
        expr=f"{by} ({p95})\n  > {number(factor)} * {by} ({then})\n"
        f"and {by} ({p95}) > {number(settings.latency_spike_floor_seconds)}\n"
        f"and on (model, variant)\n{rps} >= {number(share)} * max_over_time(({rps})[1d:5m])",
        for_="10m",
        severity="ticket",
        summary="{{ $labels.model }} ({{ $labels.variant }}) is much slower than usual at peak "
        "traffic",
        description="p95 latency of {{ $labels.model }} ({{ $labels.variant }}) over the last "
        'hour is {{ printf "%.3f" $value }} s, more than '
        f"{factor:g} times its p95 at the same hour a day and a week ago, while it serves at "
        f"least {share:.0%} of its peak traffic of the last day.",
    )


def _skew_alert(settings: RuleSettings) -> Alert:
    age = settings.new_version_age
    seen = f"group by (model, model_version) ({PREDICTIONS_TOTAL})"
    new = (
        f'group by (model, model_version) (time() - {EVENT_TS}{{event="deployed"}} '
        f"< {parse_window(age).total_seconds():g})\n  or\n"
        f"  ({seen}\n   unless on (model, model_version)\n"
        f"   group by (model, model_version) ({PREDICTIONS_TOTAL} offset {age}))"
    )
    return Alert(
        name="MLDeploySkew",
        expr=f'{DATASET_DRIFT_SHARE}{{window="1h"}} > 0\n'
        f"and on (model, model_version)\n(\n  {new}\n)\n"
        f"and {_samples_guard('drift', settings)}",
        for_="5m",
        severity="ticket",
        action=ROLLBACK,
        summary="{{ $labels.model }} {{ $labels.model_version }} serves data unlike its training "
        "reference",
        description="In the first hour of {{ $labels.model }} {{ $labels.model_version }} "
        "(deployed or first seen less than "
        f"{age} ago), {{{{ $value | humanizePercentage }}}} of its features drifted from its "
        "reference (training data): training-serving skew (a feature pipeline, schema or "
        "preprocessing that differs from training). Roll back and compare the features.",
    )


def rollout_group(settings: RuleSettings) -> Group:
    """Incidents around a rollout: a canary or shadow worse than production, a rollback that
    did not work, a latency spike at peak traffic, training-serving skew at deploy."""
    return Group(
        name="ml-monitor-rollout",
        file="rollout",
        rules=(
            *_variant_alerts(settings),
            *_rollback_alerts(settings),
            _latency_spike_alert(settings),
            _skew_alert(settings),
        ),
        needs=("slo",),
        test_interval="5m",
    )


def groups(settings: RuleSettings | None = None) -> tuple[Group, ...]:
    settings = settings or RuleSettings()
    return (
        model_quality_group(settings),
        slo_group(),
        slo_budget_group(settings),
        serving_group(settings),
        rollout_group(settings),
        gpu_group(settings),
        service_group(settings),
    )
