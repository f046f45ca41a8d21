"""Model: one model (and version) in depth: drift, data quality, performance, traffic."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from monitor.alerts.promql import PERFORMANCE_HIGHER_IS_BETTER, PERFORMANCE_LOWER_IS_BETTER
from monitor.catalogue import (
    DATASET_DRIFT_SHARE,
    ESTIMATED_PERFORMANCE,
    ESTIMATED_PERFORMANCE_ERROR,
    ESTIMATED_PERFORMANCE_LOWER,
    ESTIMATED_PERFORMANCE_UPPER,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_PVALUE,
    FEATURE_DRIFT_SCORE,
    FEATURE_MISSING_RATIO,
    FEATURE_NEW_CATEGORY_RATIO,
    FEATURE_OUT_OF_RANGE_RATIO,
    MODEL_LOAD_SECONDS,
    MODEL_PERFORMANCE,
    MULTIVARIATE_DRIFT_DETECTED,
    MULTIVARIATE_DRIFT_SCORE,
    MULTIVARIATE_DRIFT_THRESHOLD,
    PERFORMANCE_CEILING,
    PERFORMANCE_FLOOR,
    PREDICTION_DRIFT_SCORE,
    PREDICTION_ERROR_RATIO,
    PREDICTION_LATENCY_SECONDS,
    PREDICTIONS_PER_SECOND,
    PREDICTIONS_TOTAL,
    SEGMENT_DRIFT_DETECTED,
    SEGMENT_DRIFT_PVALUE,
    SEGMENT_ESTIMATED_PERFORMANCE,
    SEGMENT_ESTIMATED_PERFORMANCE_LOWER,
    SEGMENT_ESTIMATED_PERFORMANCE_UPPER,
    SEGMENT_WINDOW_SAMPLES,
    WINDOW_SAMPLES,
)
from monitor.dashboards.panels import (
    Query,
    annotation,
    heatmap_panel,
    new_dashboard,
    query,
    query_variable,
    row,
    stat_panel,
    table_panel,
    table_query,
    timeseries_panel,
)
from monitor.schemas import DriftSettings

SEL = 'model="$model", model_version=~"$model_version", window="$window"'

# Deployments, from the metrics alone: a reload changes ml_model_load_seconds, the first load of a
# version or variant starts a new series of it, and a version's first predictions start a new
# ml_predictions_total series.
LOAD_TIME = f'{MODEL_LOAD_SECONDS}{{model="$model"}}'
MODEL_LOADS = f"changes({LOAD_TIME}[5m]) > 0\nor ({LOAD_TIME} unless {LOAD_TIME} offset 5m)"
NEW_VERSIONS = (
    f'count by (model, model_version) ({PREDICTIONS_TOTAL}{{model="$model"}})\n'
    f'unless count by (model, model_version) ({PREDICTIONS_TOTAL}{{model="$model"}} offset 5m)'
)


def model_variables(dashboard: db.Dashboard) -> db.Dashboard:
    return (
        dashboard.with_variable(
            query_variable("model", "Model", f"label_values({PREDICTIONS_TOTAL}, model)")
        )
        .with_variable(
            query_variable(
                "model_version",
                "Version",
                f'label_values({PREDICTIONS_TOTAL}{{model="$model"}}, model_version)',
                multi=True,
            )
        )
        .with_variable(
            query_variable(
                "window", "Window", f'label_values({WINDOW_SAMPLES}{{model="$model"}}, window)'
            )
        )
    )


def deployment_annotations(dashboard: db.Dashboard) -> db.Dashboard:
    return dashboard.annotation(annotation("Model loads", MODEL_LOADS, "blue")).annotation(
        annotation("New version first seen", NEW_VERSIONS, "purple")
    )


def _drift_stats(dashboard: db.Dashboard, drift: DriftSettings) -> db.Dashboard:
    def rows(kind: str) -> str:
        return f'max({WINDOW_SAMPLES}{{{SEL}, metric="{kind}"}})'

    enough = ((None, "red"), (drift.min_samples, "green"))
    return (
        dashboard.with_panel(
            stat_panel(
                "Dataset drift share",
                f"Share of drifted features (dataset drift from {drift.dataset_drift_share:.0%}).",
                "percentunit",
                [query(f"max({DATASET_DRIFT_SHARE}{{{SEL}}})", instant=True)],
                steps=((None, "green"), (drift.dataset_drift_share, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Drifted features",
                "Features whose drift verdict is positive (after thresholds and guards).",
                "none",
                [query(f"sum({FEATURE_DRIFT_DETECTED}{{{SEL}}})", instant=True)],
                steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "Prediction drift",
                "Drift statistic of the model's output against the reference.",
                "none",
                [query(f"max({PREDICTION_DRIFT_SCORE}{{{SEL}}})", instant=True)],
            )
        )
        .with_panel(
            stat_panel(
                "Rows in drift window",
                f"Production rows behind the drift figures; below {drift.min_samples} no "
                "verdict is given.",
                "none",
                [query(rows("drift"), instant=True)],
                steps=enough,
            )
        )
        .with_panel(
            stat_panel(
                "Reference rows",
                "Rows of the reference data set the window is compared with.",
                "none",
                [query(rows("reference"), instant=True)],
                steps=enough,
            )
        )
        .with_panel(
            stat_panel(
                "Labelled rows",
                "Predictions with ground truth behind the performance figures.",
                "none",
                [query(rows("performance"), instant=True)],
                steps=enough,
            )
        )
    )


def _drift_details(dashboard: db.Dashboard, drift: DriftSettings) -> db.Dashboard:
    by_feature = "max by (feature, method)"
    return (
        dashboard.with_panel(
            table_panel(
                "Per-feature drift",
                "Latest drift statistic, p-value (where the method has one) and verdict of "
                "every feature in the window.",
                "none",
                [
                    table_query(f"{by_feature} ({FEATURE_DRIFT_SCORE}{{{SEL}}})"),
                    table_query(f"{by_feature} ({FEATURE_DRIFT_PVALUE}{{{SEL}}})"),
                    table_query(f"{by_feature} ({FEATURE_DRIFT_DETECTED}{{{SEL}}})"),
                ],
                columns={
                    "Value #A": "Drift score",
                    "Value #B": "p-value",
                    "Value #C": "Drifted (1 = yes)",
                },
                colored={"Value #C": ((None, "green"), (1, "red"))},
                width=12,
            )
        )
        .with_panel(
            heatmap_panel(
                "Feature drift over time",
                "One row per feature, coloured by its drift statistic (the largest over methods "
                "and selected versions).",
                "none",
                [query(f"max by (feature) ({FEATURE_DRIFT_SCORE}{{{SEL}}})", "{{feature}}")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Dataset drift share over time",
                "Share of drifted features per version; dashed line: the dataset drift threshold.",
                "percentunit",
                [
                    query(
                        f"max by (model_version) ({DATASET_DRIFT_SHARE}{{{SEL}}})",
                        "{{model_version}}",
                    )
                ],
                steps=((None, "green"), (drift.dataset_drift_share, "red")),
                threshold_line=True,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Prediction drift",
                "Drift statistic of the model's output per version and method.",
                "none",
                [query(f"{PREDICTION_DRIFT_SCORE}{{{SEL}}}", "{{model_version}} · {{method}}")],
                min_value=0,
            )
        )
    )


def _multivariate(dashboard: db.Dashboard) -> db.Dashboard:
    """Drift of the features together, and which segment drifted."""
    by_method = "max by (model_version, method)"
    by_segment = "by (segment)"
    return (
        dashboard.with_row(row("Multivariate and segment drift"))
        .with_panel(
            timeseries_panel(
                "Multivariate drift score",
                "Domain classifier: cross-validated ROC AUC of telling the window from the "
                "reference (0.5 = no drift). PCA reconstruction: mean distance from the "
                "reference's principal subspace. Dashed: each method's threshold for its "
                "sample size. The top features are in GET /v1/models/{model}/drift.",
                "none",
                [
                    query(
                        f"{by_method} ({MULTIVARIATE_DRIFT_SCORE}{{{SEL}}})",
                        "{{model_version}} · {{method}}",
                    ),
                    query(
                        f"{by_method} ({MULTIVARIATE_DRIFT_THRESHOLD}{{{SEL}}})",
                        "{{model_version}} · {{method}} threshold",
                    ),
                ],
                width=12,
            )
        )
        .with_panel(
            stat_panel(
                "Multivariate drift",
                "Methods whose verdict is drift in the window (domain classifier, PCA).",
                "none",
                [query(f"sum({MULTIVARIATE_DRIFT_DETECTED}{{{SEL}}})", instant=True)],
                steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Drifted segments",
                "Segments (top-K values by volume plus __other__) with at least one drifted "
                "feature, Benjamini-Hochberg corrected across segments and features.",
                "none",
                [
                    query(
                        f"count(max {by_segment} ({SEGMENT_DRIFT_DETECTED}{{{SEL}}}) == 1) or "
                        "vector(0)",
                        instant=True,
                    )
                ],
                steps=((None, "green"), (1, "orange")),
            )
        )
        .with_panel(
            table_panel(
                "Which segment drifted",
                "Per segment (feature=value): drifted features, the smallest adjusted p-value "
                "and the segment's rows in the window. Segments below min_samples rows give no "
                "verdict.",
                "none",
                [
                    table_query(f"sum {by_segment} ({SEGMENT_DRIFT_DETECTED}{{{SEL}}})"),
                    table_query(f"min {by_segment} ({SEGMENT_DRIFT_PVALUE}{{{SEL}}})"),
                    table_query(f"max {by_segment} ({SEGMENT_WINDOW_SAMPLES}{{{SEL}}})"),
                ],
                columns={
                    "Value #A": "Drifted features",
                    "Value #B": "Smallest adjusted p",
                    "Value #C": "Rows",
                },
                colored={"Value #A": ((None, "green"), (1, "red"))},
                width=12,
            )
        )
        .with_panel(
            table_panel(
                "Drifted features by segment",
                "Every (segment, feature) whose drift verdict is positive, with its test.",
                "none",
                [
                    table_query(
                        f"max by (segment, feature, method) ({SEGMENT_DRIFT_DETECTED}{{{SEL}}}) "
                        "== 1"
                    )
                ],
                columns={"Value #A": "Drifted (1 = yes)"},
                width=12,
            )
        )
        .with_panel(
            table_panel(
                "Estimated performance by segment",
                "Per segment and metric: the label-free estimate (CBPE / DLE, the model's "
                "estimator applied to the segment's rows) and its 3-sd band. Segments below "
                "min_samples sampled rows get none.",
                "none",
                [
                    table_query(
                        f"min by (segment, metric) ({SEGMENT_ESTIMATED_PERFORMANCE}{{{SEL}}})"
                    ),
                    table_query(
                        f"min by (segment, metric) ({SEGMENT_ESTIMATED_PERFORMANCE_LOWER}{{{SEL}}})"
                    ),
                    table_query(
                        f"max by (segment, metric) ({SEGMENT_ESTIMATED_PERFORMANCE_UPPER}{{{SEL}}})"
                    ),
                ],
                columns={"Value #A": "Estimate", "Value #B": "Lower", "Value #C": "Upper"},
                width=12,
            )
        )
    )


def _quality(dashboard: db.Dashboard) -> db.Dashboard:
    panels = (
        (
            "Missing values",
            FEATURE_MISSING_RATIO.name,
            "Share of rows where the feature is missing.",
        ),
        (
            "Out-of-range values",
            FEATURE_OUT_OF_RANGE_RATIO.name,
            "Share of numeric values outside the range seen in the reference.",
        ),
        (
            "New categories",
            FEATURE_NEW_CATEGORY_RATIO.name,
            "Share of categorical values never seen in the reference.",
        ),
    )
    dashboard = dashboard.with_row(row("Data quality"))
    for title, metric, description in panels:
        dashboard = dashboard.with_panel(
            timeseries_panel(
                title,
                description,
                "percentunit",
                [query(f"max by (feature) ({metric}{{{SEL}}})", "{{feature}}")],
                width=8,
                min_value=0,
            )
        )
    return dashboard


def _performance(dashboard: db.Dashboard, drift: DriftSettings) -> db.Dashboard:
    def perf(metrics: str) -> str:
        return f'max by (metric, model_version) ({MODEL_PERFORMANCE}{{{SEL}, metric=~"{metrics}"}})'

    return (
        dashboard.with_row(row("Performance (labelled predictions)"))
        .with_panel(
            timeseries_panel(
                "Classification metrics",
                "Accuracy, precision, recall, F1 and ROC AUC from predictions whose labels "
                "arrived, per version.",
                "percentunit",
                [query(perf(PERFORMANCE_HIGHER_IS_BETTER), "{{metric}} · {{model_version}}")],
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error metrics",
                "Log loss, MAE, RMSE and MAPE from labelled predictions, per version (lower is "
                "better).",
                "none",
                [query(perf(PERFORMANCE_LOWER_IS_BETTER), "{{metric}} · {{model_version}}")],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Labelled sample size",
                "Labelled predictions behind the performance figures; dashed line: the minimum "
                "sample size for a verdict.",
                "none",
                [
                    query(
                        f'max by (model_version) ({WINDOW_SAMPLES}{{{SEL}, metric="performance"}})',
                        "{{model_version}}",
                    )
                ],
                steps=((None, "red"), (drift.min_samples, "green")),
                threshold_line=True,
                width=8,
                min_value=0,
            )
        )
    )


def _estimate_targets(metrics: str, bound: str) -> list[Query]:
    """Estimate, its band, the realized figure of the same window, and the model's bound."""
    only = f'metric=~"{metrics}"'
    by = "max by (metric, model_version)"
    legend = "{{metric}} · {{model_version}}"
    return [
        query(f"{by} ({ESTIMATED_PERFORMANCE}{{{SEL}, {only}}})", f"estimated {legend}"),
        query(f"{by} ({ESTIMATED_PERFORMANCE_LOWER}{{{SEL}, {only}}})", f"band low {legend}"),
        query(f"{by} ({ESTIMATED_PERFORMANCE_UPPER}{{{SEL}, {only}}})", f"band high {legend}"),
        query(f"{by} ({MODEL_PERFORMANCE}{{{SEL}, {only}}})", f"realized {legend}"),
        query(
            f'max by (metric) ({bound}{{model="$model", window="$window", {only}}})',
            "bound {{metric}}",
        ),
    ]


def _estimated(dashboard: db.Dashboard) -> db.Dashboard:
    higher = "accuracy|precision|recall|f1|roc_auc"
    return (
        dashboard.with_row(row("Estimated performance (before labels)"))
        .with_panel(
            timeseries_panel(
                "Estimated classification metrics",
                "CBPE estimate from the calibrated scores alone, its 3-sd band (where the "
                "realized figure can be at this window size), the realized figure once labels "
                "arrive, and the model's performance.min.",
                "percentunit",
                _estimate_targets(higher, PERFORMANCE_FLOOR.name),
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Estimated error metrics",
                "DLE estimate of MAE and RMSE from the features and the prediction, its band, "
                "the realized figure once labels arrive, and the model's performance.max.",
                "none",
                _estimate_targets("mae|rmse", PERFORMANCE_CEILING.name),
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Estimate error (realized − estimated)",
                "On the sampled rows whose labels have arrived: how far the estimate was from "
                "what the labels show. Within the band, the estimate can be trusted.",
                "none",
                [
                    query(
                        f"max by (metric, model_version) ({ESTIMATED_PERFORMANCE_ERROR}{{{SEL}}})",
                        "{{metric}} · {{model_version}}",
                    )
                ],
                width=8,
            )
        )
    )


def _traffic(dashboard: db.Dashboard) -> db.Dashboard:
    by = "by (model_version, variant)"
    legend = "{{model_version}} · {{variant}}"
    return (
        dashboard.with_row(row("Traffic"))
        .with_panel(
            timeseries_panel(
                "Predictions per second",
                "Throughput per version and variant (see Serving & versions for more).",
                "reqps",
                [query(f"sum {by} ({PREDICTIONS_PER_SECOND}{{{SEL}}})", legend)],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Error ratio",
                "Share of predictions with a status other than ok.",
                "percentunit",
                [query(f"max {by} ({PREDICTION_ERROR_RATIO}{{{SEL}}})", legend)],
                width=8,
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "p95 latency",
                "95th percentile prediction latency.",
                "s",
                [
                    query(
                        f'max {by} ({PREDICTION_LATENCY_SECONDS}{{{SEL}, quantile="0.95"}})',
                        legend,
                    )
                ],
                width=8,
                min_value=0,
            )
        )
    )


def model() -> db.Dashboard:
    drift = DriftSettings()
    dashboard = new_dashboard(
        "ml-monitor-model",
        "ML model: drift, quality, performance",
        "One model in depth. Annotations mark model loads and the first predictions of a new "
        "version.",
    )
    dashboard = deployment_annotations(model_variables(dashboard)).with_row(row("Drift"))
    dashboard = _drift_details(_drift_stats(dashboard, drift), drift)
    dashboard = _multivariate(dashboard)
    return _traffic(_estimated(_performance(_quality(dashboard), drift)))
