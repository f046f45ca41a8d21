"""Serving & versions: latency, throughput, errors and load times, variants side by side."""

from __future__ import annotations

from typing import get_args

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat

from monitor.alerts.promql import SLI, sli_ratio, sli_record
from monitor.alerts.rules import (
    SLO_BUDGET_RECORD,
    SLO_BUDGET_REMAINING_RECORD,
    SLO_CURRENT_BURN_RECORD,
    SLO_PERIOD_BURN_RECORD,
    RuleSettings,
)
from monitor.catalogue import (
    DATASET_DRIFT_SHARE,
    DEPLOYMENT_EVENT_TIMESTAMP_SECONDS,
    MODEL_LOAD_SECONDS,
    PREDICTION_ERROR_RATIO,
    PREDICTION_LATENCY_SECONDS,
    PREDICTIONS_OVER_LATENCY_SLO_TOTAL,
    PREDICTIONS_PER_SECOND,
    PREDICTIONS_TOTAL,
    SLO_OBJECTIVE,
    VARIANT_ERROR_RATIO_DELTA,
    VARIANT_LATENCY_P95_DELTA_SECONDS,
    VARIANT_PREDICTION_DRIFT_DETECTED,
    VARIANT_PREDICTION_DRIFT_SCORE,
)
from monitor.dashboards.model import deployment_annotations, model_variables
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
from monitor.schemas import SloSettings
from monitor.windows import parse_window

VERSION = 'model="$model", model_version=~"$model_version"'
SEL = f'{VERSION}, variant=~"$variant", window="$window"'
BY = "by (model_version, variant)"
LEGEND = "{{model_version}} · {{variant}}"


def _variants_side_by_side(dashboard: db.Dashboard) -> db.Dashboard:
    def latency(q: str) -> str:
        return f'max {BY} ({PREDICTION_LATENCY_SECONDS}{{{SEL}, quantile="{q}"}})'

    targets = [
        table_query(latency("0.5")),
        table_query(latency("0.95")),
        table_query(latency("0.99")),
        table_query(f"sum {BY} ({PREDICTIONS_PER_SECOND}{{{SEL}}})"),
        table_query(f"100 * max {BY} ({PREDICTION_ERROR_RATIO}{{{SEL}}})"),
        table_query(f'max {BY} ({MODEL_LOAD_SECONDS}{{{VERSION}, variant=~"$variant"}})'),
    ]
    return (
        dashboard.with_row(row("Variants side by side"))
        .with_panel(
            table_panel(
                "Versions and variants",
                "Production, canary and shadow of each version next to each other in the window.",
                "none",
                targets,
                columns={
                    "Value #A": "p50 (s)",
                    "Value #B": "p95 (s)",
                    "Value #C": "p99 (s)",
                    "Value #D": "Predictions / s",
                    "Value #E": "Errors (%)",
                    "Value #F": "Last load (s)",
                },
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency: $variant",
                "Latency quantiles of one variant; the panel repeats for every selected variant "
                "so canary and shadow sit next to production.",
                "s",
                [
                    query(
                        f"max by (quantile, model_version) ({PREDICTION_LATENCY_SECONDS}{{{SEL}}})",
                        "p{{quantile}} · {{model_version}}",
                    )
                ],
                width=8,
                min_value=0,
            )
            .repeat("variant")
            .repeat_direction("h")
            .max_per_row(3)
        )
    )


def _latency(dashboard: db.Dashboard, slo: SloSettings) -> db.Dashboard:
    slow_budget = 1 - slo.latency_target
    return (
        dashboard.with_row(row("Latency"))
        .with_panel(
            timeseries_panel(
                "Latency quantiles",
                "p50, p95 and p99 per version and variant; dashed line: the default SLO latency.",
                "s",
                [query(f"{PREDICTION_LATENCY_SECONDS}{{{SEL}}}", "p{{quantile}} · " + LEGEND)],
                steps=((None, "green"), (slo.latency_ms / 1000, "red")),
                threshold_line=True,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Slower than the SLO",
                "Share of predictions slower than the model's SLO latency (counter "
                f"{PREDICTIONS_OVER_LATENCY_SLO_TOTAL}); dashed line: the latency error budget.",
                "percentunit",
                [query(sli_ratio("slow", "$__rate_interval", VERSION), "{{model}}")],
                steps=((None, "green"), (slow_budget, "red")),
                threshold_line=True,
                min_value=0,
            )
        )
    )


def _errors(dashboard: db.Dashboard, slo: SloSettings) -> db.Dashboard:
    error_budget = 1 - slo.availability_target
    return (
        dashboard.with_row(row("Throughput and errors"))
        .with_panel(
            timeseries_panel(
                "Predictions per second",
                "Throughput per version and variant in the window.",
                "reqps",
                [query(f"sum {BY} ({PREDICTIONS_PER_SECOND}{{{SEL}}})", LEGEND)],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio",
                "Share of predictions with a status other than ok; dashed line: the "
                "availability error budget.",
                "percentunit",
                [query(f"max {BY} ({PREDICTION_ERROR_RATIO}{{{SEL}}})", LEGEND)],
                steps=((None, "green"), (error_budget, "red")),
                threshold_line=True,
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Errors by status",
                f"Failed predictions per second by status string ({PREDICTIONS_TOTAL}).",
                "reqps",
                [
                    query(
                        f'sum by (status) (rate({PREDICTIONS_TOTAL}{{{VERSION}, status!="ok"}}'
                        "[$__rate_interval]))",
                        "{{status}}",
                    )
                ],
                width=8,
                min_value=0,
            )
        )
    )


def _budget(dashboard: db.Dashboard, settings: RuleSettings) -> db.Dashboard:
    """Sloth's SLO view from the recording rules, against the model's own objectives."""
    period = settings.slo_period
    this = 'model="$model"'

    def burn(window: str) -> str:
        ratios = " or ".join(sli_record(sli, window) + f"{{{this}}}" for sli in get_args(SLI))
        return f"({ratios})\n/ on (model, slo) {SLO_BUDGET_RECORD}"

    def left(slo: str) -> stat.Panel:
        return stat_panel(
            f"{slo.capitalize()} budget left ({period})",
            f"Share of the {period} {slo} error budget not yet spent "
            f"({SLO_BUDGET_REMAINING_RECORD}): 100% untouched, 0 spent, below 0 overspent.",
            "percentunit",
            [query(f'{SLO_BUDGET_REMAINING_RECORD}{{{this}, slo="{slo}"}}', instant=True)],
            steps=((None, "red"), (0.0001, "orange"), (0.25, "green")),
            width=6,
            height=8,
            decimals=1,
        )

    return (
        dashboard.with_row(row(f"Error budget ({period})"))
        .with_panel(left("availability"))
        .with_panel(left("latency"))
        .with_panel(
            timeseries_panel(
                f"Error budget left over {period}",
                f"Budget left of each SLO over the trailing {period} "
                f"({SLO_BUDGET_REMAINING_RECORD}), against the model's own objective "
                f"({SLO_OBJECTIVE}).",
                "percentunit",
                [query(f"{SLO_BUDGET_REMAINING_RECORD}{{{this}}}", "{{slo}}")],
                steps=((None, "red"), (0.0001, "green")),
                threshold_line=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error budget burn rate",
                "How many times faster than the model's objective allows each budget burns: "
                f"now (5m, {SLO_CURRENT_BURN_RECORD}), over the page window (1h) and over the "
                f"{period} ({SLO_PERIOD_BURN_RECORD}). 1 spends exactly the {period} budget, "
                "14.4 pages.",
                "short",
                [
                    query(f"{SLO_CURRENT_BURN_RECORD}{{{this}}}", "{{slo}} · 5m"),
                    query(burn("1h"), "{{slo}} · 1h"),
                    query(f"{SLO_PERIOD_BURN_RECORD}{{{this}}}", "{{slo}} · " + period),
                ],
                width=24,
                steps=((None, "green"), (1, "orange"), (14.4, "red")),
                threshold_line=True,
                min_value=0,
            )
        )
    )


def _rollouts(dashboard: db.Dashboard, settings: RuleSettings) -> db.Dashboard:
    """The rollout alerts' evidence: each canary or shadow minus production, p95 against its
    same-hour baselines, deployment events, and new versions against their reference."""
    variants = f'{VERSION}, variant=~"$variant", window="$window"'
    this = 'model="$model"'
    p95 = f'{PREDICTION_LATENCY_SECONDS}{{{this}, quantile="0.95", window="1h"}}'
    baselines = " or ".join(
        f'label_replace(max by (variant) ({p95} offset {ago}), "variant", "$1 · {ago} ago", '
        '"variant", "(.*)")'
        for ago in ("1d", "7d")
    )
    age = settings.new_version_age
    seen = f"group by (model_version) ({PREDICTIONS_TOTAL}{{{this}}}"
    deployed = f'{DEPLOYMENT_EVENT_TIMESTAMP_SECONDS}{{{this}, event="deployed"}}'
    recent = f"time() - {deployed} < {parse_window(age).total_seconds():g}"
    new_versions = (
        f'max by (model_version) ({DATASET_DRIFT_SHARE}{{{this}, window="1h"}})\n'
        f"and on (model_version) (\n  {seen}) unless {seen} offset {age})\n"
        f"  or group by (model_version) ({recent})\n)"
    )
    return (
        dashboard.with_row(row("Rollouts"))
        .with_panel(
            timeseries_panel(
                "Variant p95 minus production",
                "p95 latency of each canary or shadow minus production's in the window "
                f"({VARIANT_LATENCY_P95_DELTA_SECONDS}); MLVariantLatencyWorse asks for a "
                "rollback above half of production's p95.",
                "s",
                [query(f"{VARIANT_LATENCY_P95_DELTA_SECONDS}{{{variants}}}", LEGEND)],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Variant error ratio minus production",
                "Error ratio of each canary or shadow minus production's "
                f"({VARIANT_ERROR_RATIO_DELTA}); dashed line: the "
                f"{settings.variant_error_ratio_increase:.0%} of MLVariantErrorsWorse.",
                "percentunit",
                [query(f"{VARIANT_ERROR_RATIO_DELTA}{{{variants}}}", LEGEND)],
                steps=((None, "green"), (settings.variant_error_ratio_increase, "red")),
                threshold_line=True,
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Variant predictions against production",
                "Drift of each canary's or shadow's predictions from production's on the same "
                f"traffic ({VARIANT_PREDICTION_DRIFT_SCORE}, by method); "
                f"{VARIANT_PREDICTION_DRIFT_DETECTED} is the verdict MLVariantPredictionDrift "
                "reads.",
                "short",
                [
                    query(
                        f"{VARIANT_PREDICTION_DRIFT_SCORE}{{{variants}}}",
                        "{{method}} · " + LEGEND,
                    )
                ],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "p95 against the same hour yesterday and last week",
                "Hourly p95 per variant now and a day and a week ago (offset 1d, 7d): "
                "MLLatencySpikeAtPeak fires above twice the larger baseline at peak traffic.",
                "s",
                [query(f"max by (variant) ({p95})\nor {baselines}", "{{variant}}")],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            table_panel(
                "Deployment events",
                "Seconds since each version and variant was last deployed, rolled back and "
                f"loaded ({DEPLOYMENT_EVENT_TIMESTAMP_SECONDS}, from POST /v1/events, last 7 "
                "days): a rollback with no load after it is MLRollbackNotLoaded.",
                "s",
                [
                    table_query(
                        "time() - max by (model_version, variant, event) "
                        f"({DEPLOYMENT_EVENT_TIMESTAMP_SECONDS}{{{this}}})"
                    )
                ],
                columns={"Value": "Seconds ago", "model_version": "Version"},
                width=8,
                decimals=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "New versions against their training reference",
                "Share of drifted features (1h window) of the versions deployed or first seen "
                f"less than {settings.new_version_age} ago: training-serving skew at deploy, "
                "which MLDeploySkew asks to roll back.",
                "percentunit",
                [query(new_versions, "{{model_version}}")],
                width=8,
                min_value=0,
                max_value=1,
            )
        )
    )


def _loads(dashboard: db.Dashboard) -> db.Dashboard:
    loads = f'max {BY} ({MODEL_LOAD_SECONDS}{{{VERSION}, variant=~"$variant"}})'
    return (
        dashboard.with_row(row("Model loads"))
        .with_panel(
            stat_panel(
                "Last model load",
                "Seconds the most recent load of each version and variant took.",
                "s",
                [query(loads, LEGEND, instant=True)],
                steps=((None, "green"), (60, "orange"), (120, "red")),
                width=8,
                height=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Model load time",
                "Load time of each version and variant as reported by deployment events.",
                "s",
                [query(loads, LEGEND)],
                width=16,
                min_value=0,
            )
        )
    )


def serving() -> db.Dashboard:
    slo = SloSettings()
    dashboard = new_dashboard(
        "ml-monitor-serving",
        "ML serving & versions",
        "Latency, throughput, errors and model load time of one model, with its versions and "
        "variants (production, canary, shadow) side by side.",
    )
    dashboard = model_variables(dashboard).with_variable(
        query_variable(
            "variant",
            "Variant",
            f"label_values({PREDICTIONS_PER_SECOND}{{{VERSION}}}, variant)",
            multi=True,
        )
    )
    dashboard = _variants_side_by_side(deployment_annotations(dashboard))
    settings = RuleSettings()
    dashboard = _budget(_errors(_latency(dashboard, slo), slo), settings)
    return _loads(_rollouts(dashboard, settings))
