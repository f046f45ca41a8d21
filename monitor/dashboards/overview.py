"""Overview: every model on one screen."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from monitor.alerts.promql import scheduler_job
from monitor.alerts.rules import SLO_BUDGET_REMAINING_RECORD, RuleSettings
from monitor.catalogue import (
    COST_PER_MILLION_PREDICTIONS,
    DATASET_DRIFT_SHARE,
    JOB_LAST_SUCCESS_TIMESTAMP_SECONDS,
    PREDICTION_ERROR_RATIO,
    PREDICTION_LATENCY_SECONDS,
    PREDICTIONS_PER_SECOND,
    PREDICTIONS_TOTAL,
    WEBHOOK_DELIVERIES_TOTAL,
    WINDOW_SAMPLES,
)
from monitor.dashboards.panels import (
    new_dashboard,
    query,
    query_variable,
    row,
    stat_panel,
    table_panel,
    table_query,
    timeseries_panel,
)
from monitor.schemas import DriftSettings, SloSettings

W = 'window="$window"'


def overview() -> db.Dashboard:
    drift_share = DriftSettings().dataset_drift_share
    error_budget = 1 - SloSettings().availability_target
    slo_seconds = SloSettings().latency_ms / 1000
    settings = RuleSettings()
    stale = settings.job_stale_seconds
    last_success = f"max by (job) ({scheduler_job(JOB_LAST_SUCCESS_TIMESTAMP_SECONDS.name)})"
    return (
        new_dashboard(
            "ml-monitor-overview",
            "ML models: overview",
            "Every monitored model at a glance: drift, errors, latency, traffic, cost and the "
            "health of ml-monitor's own jobs.",
        )
        .with_variable(
            query_variable("window", "Window", f"label_values({WINDOW_SAMPLES}, window)")
        )
        .with_row(row("Fleet"))
        .with_panel(
            stat_panel(
                "Models reporting",
                f"Models with at least one stored prediction ({PREDICTIONS_TOTAL}).",
                "none",
                [query(f"count(count by (model) ({PREDICTIONS_TOTAL}))", instant=True)],
            )
        )
        .with_panel(
            stat_panel(
                "Models with dataset drift",
                f"Models whose share of drifted features is at least {drift_share:.0%} in the "
                "selected window (any version).",
                "none",
                [
                    query(
                        f"count(max by (model) ({DATASET_DRIFT_SHARE}{{{W}}}) >= {drift_share})"
                        " or vector(0)",
                        instant=True,
                    )
                ],
                steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Firing ML alerts",
                "Alerts of ml-monitor's rules firing now (Prometheus ALERTS series).",
                "none",
                [
                    query(
                        'count(ALERTS{alertstate="firing", alertname=~"ML.*|GPU.*|VLLM.*"})'
                        " or vector(0)",
                        instant=True,
                    )
                ],
                steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Predictions / s",
                f"Predictions stored per second over all models, from {PREDICTIONS_TOTAL}.",
                "reqps",
                [query(f"sum(rate({PREDICTIONS_TOTAL}[$__rate_interval]))")],
            )
        )
        .with_panel(
            stat_panel(
                "Oldest job success",
                "Time since the least recent successful run among ml-monitor's scheduled jobs.",
                "s",
                [query(f"time() - min({last_success})", instant=True)],
                steps=((None, "green"), (stale, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Dead webhooks (24h)",
                "Retraining webhook deliveries that ran out of retries in the last 24 hours.",
                "none",
                [
                    query(
                        f'sum(increase({WEBHOOK_DELIVERIES_TOTAL}{{outcome="dead"}}[24h]))'
                        " or vector(0)",
                        instant=True,
                    )
                ],
                steps=((None, "green"), (1, "red")),
                decimals=0,
            )
        )
        .with_row(row("Models"))
        .with_panel(
            table_panel(
                "Models at a glance",
                "One row per model, worst version or variant, in the selected window.",
                "none",
                [
                    table_query(f"100 * max by (model) ({DATASET_DRIFT_SHARE}{{{W}}})"),
                    table_query(f"100 * max by (model) ({PREDICTION_ERROR_RATIO}{{{W}}})"),
                    table_query(
                        f'max by (model) ({PREDICTION_LATENCY_SECONDS}{{{W}, quantile="0.95"}})',
                    ),
                    table_query(f"sum by (model) ({PREDICTIONS_PER_SECOND}{{{W}}})"),
                    table_query(f"max by (model) ({COST_PER_MILLION_PREDICTIONS}{{{W}}})"),
                ],
                columns={
                    "Value #A": "Drift share (%)",
                    "Value #B": "Errors (%)",
                    "Value #C": "p95 latency (s)",
                    "Value #D": "Predictions / s",
                    "Value #E": "Cost per 1M",
                },
                colored={
                    "Value #A": ((None, "green"), (100 * drift_share, "red")),
                    "Value #B": ((None, "green"), (100 * error_budget, "red")),
                },
            )
        )
        .with_row(row("Trends"))
        .with_panel(
            timeseries_panel(
                "Dataset drift share",
                "Share of drifted features per model (worst version); dashed line: the dataset "
                "drift threshold.",
                "percentunit",
                [query(f"max by (model) ({DATASET_DRIFT_SHARE}{{{W}}})", "{{model}}")],
                steps=((None, "green"), (drift_share, "red")),
                threshold_line=True,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio",
                "Share of predictions with status other than ok, per model; dashed line: the "
                "availability SLO's error budget.",
                "percentunit",
                [query(f"max by (model) ({PREDICTION_ERROR_RATIO}{{{W}}})", "{{model}}")],
                steps=((None, "green"), (error_budget, "red")),
                threshold_line=True,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                f"Error budget left ({settings.slo_period})",
                f"The least budget left of each model's SLOs over the trailing "
                f"{settings.slo_period} ({SLO_BUDGET_REMAINING_RECORD}, against the model's own "
                "objectives): 100% untouched, 0 spent, below 0 overspent.",
                "percentunit",
                [query(f"min by (model) ({SLO_BUDGET_REMAINING_RECORD})", "{{model}}")],
                steps=((None, "red"), (0.0001, "green")),
                threshold_line=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "p95 latency",
                "95th percentile prediction latency per model (worst variant); dashed line: the "
                "default SLO latency.",
                "s",
                [
                    query(
                        f'max by (model) ({PREDICTION_LATENCY_SECONDS}{{{W}, quantile="0.95"}})',
                        "{{model}}",
                    )
                ],
                steps=((None, "green"), (slo_seconds, "red")),
                threshold_line=True,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Predictions per second",
                "Throughput per model in the selected window, all versions and variants.",
                "reqps",
                [query(f"sum by (model) ({PREDICTIONS_PER_SECOND}{{{W}}})", "{{model}}")],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cost per 1M predictions",
                "Cost of one million predictions per model, in the model's configured currency.",
                "short",
                [
                    query(
                        f"max by (model, currency) ({COST_PER_MILLION_PREDICTIONS}{{{W}}})",
                        "{{model}} ({{currency}})",
                    )
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time since last successful job run",
                "Seconds since each scheduled job last succeeded; a rising line is a stuck or "
                "failing job.",
                "s",
                [query(f"time() - {last_success}", "{{job}}")],
                steps=((None, "green"), (stale, "red")),
                min_value=0,
            )
        )
    )
