"""Cost: cost per million predictions against the budget, and what it adds up to per day."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from monitor.alerts.rules import RuleSettings
from monitor.catalogue import COST_PER_MILLION_PREDICTIONS, PREDICTIONS_TOTAL
from monitor.dashboards.panels import (
    new_dashboard,
    query,
    query_variable,
    row,
    stat_panel,
    timeseries_panel,
)

MODELS = 'model=~"$model"'
SEL = f'{MODELS}, window="$window"'
# Per version: cost per 1M (24h window) x predictions in the last day / 1M, summed per model.
DAILY_SPEND = (
    "sum by (model, currency) (\n"
    "  max by (model, model_version, currency) (\n"
    f'    {COST_PER_MILLION_PREDICTIONS}{{{MODELS}, window="24h"}}\n'
    "  )\n"
    "  * on (model, model_version) group_left ()\n"
    f"  sum by (model, model_version) (increase({PREDICTIONS_TOTAL}{{{MODELS}}}[1d]))\n"
    ") / 1e6"
)


def cost() -> db.Dashboard:
    budget = min(RuleSettings().cost_budgets.values())
    over_budget = ((None, "green"), (0.8 * budget, "orange"), (budget, "red"))
    per_million = f"max by (model, currency) ({COST_PER_MILLION_PREDICTIONS}{{{SEL}}})"
    return (
        new_dashboard(
            "ml-monitor-cost",
            "ML cost",
            "Cost per million predictions per model against the alerting budget, and the daily "
            "spend it implies.",
        )
        .with_variable(
            query_variable(
                "model", "Model", f"label_values({COST_PER_MILLION_PREDICTIONS}, model)", multi=True
            )
        )
        .with_variable(
            query_variable(
                "window", "Window", f"label_values({COST_PER_MILLION_PREDICTIONS}, window)"
            )
        )
        .with_row(row("Cost per million predictions"))
        .with_panel(
            stat_panel(
                "Cost per 1M predictions",
                f"Latest cost of one million predictions per model; red from the budget "
                f"({budget:g}, see MLCostAboveBudget).",
                "short",
                [query(per_million, "{{model}} ({{currency}})", instant=True)],
                steps=over_budget,
                width=8,
                height=8,
                decimals=2,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cost per 1M predictions over time",
                "Cost of one million predictions per model; dashed line: the alerting budget.",
                "short",
                [query(per_million, "{{model}} ({{currency}})")],
                steps=over_budget,
                threshold_line=True,
                width=16,
                min_value=0,
            )
        )
        .with_row(row("Spend"))
        .with_panel(
            timeseries_panel(
                "Predictions per day",
                "Predictions stored over the trailing 24 hours per model.",
                "short",
                [
                    query(
                        f"sum by (model) (increase({PREDICTIONS_TOTAL}{{{MODELS}}}[1d]))",
                        "{{model}}",
                    )
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Estimated spend per day",
                "Cost per 1M predictions (24h window) times the predictions of the trailing 24 "
                "hours, per model and currency.",
                "short",
                [query(DAILY_SPEND, "{{model}} ({{currency}})")],
                min_value=0,
            )
        )
    )
