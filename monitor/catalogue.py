"""Every metric ml-monitor exports: name, type, help, labels, unit, and the default it is
judged against. Pure data: nothing is registered anywhere at import.

The jobs write ``Result`` rows under a figure's :attr:`Metric.result` name, the exporter makes
its families from :data:`RESULTS`, the ingest and webhook collectors take their families from
here, and the dashboards, alert rules and webhook triggers spell metric names and default
thresholds through these objects (``str(metric)`` is its PromQL name). A new figure is one entry
here and the job that writes it; ``tests/test_catalogue.py`` checks that every ``ml_`` and
``monitor_`` name in ``dashboards/`` and ``alerts/`` is one of these and that the exporter says
what this module says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Type = Literal["gauge", "counter", "summary", "histogram"]
Source = Literal["results", "ingest", "jobs", "webhooks", "consumer"]

RESULT_PREFIX = "ml_"
"""Result figures are exported as ``ml_<Result.metric>``."""
BASE_LABELS = ("model", "model_version", "window")
"""Labels of every result figure, before its own."""


@dataclass(frozen=True)
class Metric:
    """One exported metric family. ``name`` is what PromQL says (counters end in ``_total``)."""

    name: str
    type: Type
    help: str
    labels: tuple[str, ...]
    unit: str = ""
    """Unit of its values: "seconds", "ratio" (0..1), "1/s", "rows", "currency"; "" if none."""
    source: Source = "results"
    default_threshold: float | None = None
    """The default a value is judged against (settings, rules and triggers start from it)."""

    def __str__(self) -> str:
        return self.name

    @property
    def threshold(self) -> float:
        """``default_threshold`` of a metric that has one."""
        if self.default_threshold is None:
            raise ValueError(f"{self.name} has no default threshold")
        return self.default_threshold

    @property
    def result(self) -> str:
        """The ``Result.metric`` a job writes for this figure (the name without ``ml_``)."""
        if self.source != "results":
            raise ValueError(f"{self.name} is not a result figure")
        return self.name.removeprefix(RESULT_PREFIX)

    @property
    def family(self) -> str:
        """The family name prometheus_client gives it (counters without ``_total``)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


def _result(
    name: str,
    help: str,
    labels: tuple[str, ...] = (),
    unit: str = "",
    default_threshold: float | None = None,
    type: Type = "gauge",
) -> Metric:
    return Metric(
        RESULT_PREFIX + name, type, help, BASE_LABELS + labels, unit, "results", default_threshold
    )


# Result figures, written by the jobs.
FEATURE_DRIFT_SCORE = _result(
    "feature_drift_score",
    "Drift statistic of a feature in a window (label method)",
    ("feature", "method"),
)
FEATURE_DRIFT_PVALUE = _result(
    "feature_drift_pvalue",
    "p-value of the feature's drift test, where the method has one",
    ("feature", "method"),
)
FEATURE_DRIFT_DETECTED = _result(
    "feature_drift_detected",
    "1 if the feature drifted in the window after thresholds and guards",
    ("feature", "method"),
)
DATASET_DRIFT_SHARE = _result(
    "dataset_drift_share",
    "Share of the model's features that drifted in the window",
    unit="ratio",
    default_threshold=0.5,
)
PREDICTION_DRIFT_SCORE = _result(
    "prediction_drift_score", "Drift statistic of the model's output in the window", ("method",)
)
LABEL_DRIFT_SCORE = _result(
    "label_drift_score", "Drift statistic of the delayed labels in the window", ("method",)
)
FEATURE_MISSING_RATIO = _result(
    "feature_missing_ratio", "Share of rows with the feature missing", ("feature",), "ratio"
)
FEATURE_OUT_OF_RANGE_RATIO = _result(
    "feature_out_of_range_ratio",
    "Share of numeric values outside the reference range",
    ("feature",),
    "ratio",
)
FEATURE_NEW_CATEGORY_RATIO = _result(
    "feature_new_category_ratio",
    "Share of categorical values unseen in the reference",
    ("feature",),
    "ratio",
)
SCHEMA_VIOLATIONS = _result(
    "schema_violations",
    "Values of the feature in the window that did not fit its schema",
    ("feature",),
    "rows",
)
MODEL_PERFORMANCE = _result(
    "model_performance",
    "Model quality from labelled predictions (label metric)",
    ("metric",),
    default_threshold=0.10,
)
"""Its threshold: a drop by more than this share of the 7-day average is a performance drop."""
ESTIMATED_PERFORMANCE = _result(
    "estimated_performance",
    "Model quality estimated without labels (CBPE for classifiers, DLE for regressors)",
    ("metric",),
)
"""On a uniform sample of the window's rows; the band is its ``_lower`` / ``_upper``."""
ESTIMATED_PERFORMANCE_LOWER = _result(
    "estimated_performance_lower",
    "Lower end of the estimate's sampling band (3 sd of the realized value at this window size)",
    ("metric",),
)
ESTIMATED_PERFORMANCE_UPPER = _result(
    "estimated_performance_upper",
    "Upper end of the estimate's sampling band (3 sd of the realized value at this window size)",
    ("metric",),
)
ESTIMATED_PERFORMANCE_ERROR = _result(
    "estimated_performance_error",
    "Realized minus estimated quality on the window's labelled rows (how far to trust it)",
    ("metric",),
)
PERFORMANCE_FLOOR = _result(
    "performance_floor",
    "The model's configured minimum of a quality metric (performance.min)",
    ("metric",),
)
PERFORMANCE_CEILING = _result(
    "performance_ceiling",
    "The model's configured maximum of an error metric (performance.max)",
    ("metric",),
)
PREDICTION_LATENCY_SECONDS = _result(
    "prediction_latency_seconds",
    "Prediction latency quantile in the window",
    ("variant", "quantile"),
    "seconds",
    # Prometheus reserves the quantile label for summaries (promtool rejects it on a gauge), and
    # a summary is what they are: quantiles over a sliding window, without _count and _sum.
    type="summary",
)
TIME_TO_FIRST_TOKEN_SECONDS = _result(
    "time_to_first_token_seconds",
    "Time to the first generated token, quantile in the window (LLM spans received over OTLP)",
    ("variant", "quantile"),
    "seconds",
    type="summary",
)
PREDICTIONS_PER_SECOND = _result(
    "predictions_per_second", "Predictions per second over the window", ("variant",), "1/s"
)
PREDICTION_ERROR_RATIO = _result(
    "prediction_error_ratio",
    "Share of predictions whose status is not ok",
    ("variant",),
    "ratio",
)
MODEL_LOAD_SECONDS = _result(
    "model_load_seconds",
    "Time the last model load of this version and variant took",
    ("variant",),
    "seconds",
    default_threshold=120.0,
)
COST_PER_MILLION_PREDICTIONS = _result(
    "cost_per_million_predictions",
    "Cost of one million predictions in the window",
    ("currency",),
    "currency",
    default_threshold=100.0,
)
"""Its threshold: the default budget per million predictions over 24h, in USD."""
WINDOW_SAMPLES = _result(
    "window_samples",
    "Rows behind a windowed figure (label metric: which figure)",
    ("metric",),
    "rows",
)
SLO_OBJECTIVE = _result(
    "slo_objective",
    "The model's SLO objective: share of predictions that must be good (label slo)",
    ("slo",),
    "ratio",
)
"""``slo="availability"``: status ok; ``slo="latency"``: within the model's SLO latency."""
VARIANT_LATENCY_P95_DELTA_SECONDS = _result(
    "variant_latency_p95_delta_seconds",
    "p95 latency of a variant minus production's",
    ("variant",),
    "seconds",
)
VARIANT_ERROR_RATIO_DELTA = _result(
    "variant_error_ratio_delta",
    "Error ratio of a variant minus production's",
    ("variant",),
    "ratio",
)
VARIANT_PREDICTION_DRIFT_SCORE = _result(
    "variant_prediction_drift_score",
    "Drift of a variant's predictions against production's",
    ("variant", "method"),
)
VARIANT_PREDICTION_DRIFT_DETECTED = _result(
    "variant_prediction_drift_detected",
    "1 when a variant's predictions drifted from production's (the method's threshold, both "
    "sides with at least the drift minimum sample size), else 0",
    ("variant", "method"),
)
DEPLOYMENT_EVENT_TIMESTAMP_SECONDS = _result(
    "deployment_event_timestamp_seconds",
    "Unix time of the latest deployment event of a version and variant in the last 7 days "
    "(label event: deployed, rolled_back, model_loaded)",
    ("variant", "event"),
    "seconds",
)
"""Bounded: three event kinds, and the versions and variants a model is capped at."""

MULTIVARIATE_DRIFT_SCORE = _result(
    "multivariate_drift_score",
    "Multivariate drift of the features together (method domain_classifier: cross-validated "
    "ROC AUC, 0.5 = no drift; pca_reconstruction: mean reconstruction error)",
    ("method",),
)
MULTIVARIATE_DRIFT_THRESHOLD = _result(
    "multivariate_drift_threshold",
    "The score above which the window is judged drifted (domain classifier: the AUC threshold "
    "for its sample sizes; PCA: the upper end of the reference band)",
    ("method",),
)
MULTIVARIATE_DRIFT_DETECTED = _result(
    "multivariate_drift_detected",
    "1 if the features drifted together in the window (label method)",
    ("method",),
)
SEGMENT_DRIFT_SCORE = _result(
    "segment_drift_score",
    "Drift statistic of a feature inside a segment (segment feature=value, top-K plus "
    "__other__) against the same segment of the reference",
    ("segment", "feature", "method"),
)
SEGMENT_DRIFT_PVALUE = _result(
    "segment_drift_pvalue",
    "p-value of a feature's drift inside a segment, Benjamini-Hochberg adjusted across "
    "segments and features",
    ("segment", "feature", "method"),
)
SEGMENT_DRIFT_DETECTED = _result(
    "segment_drift_detected",
    "1 if the feature drifted inside the segment (adjusted p-value at or below 0.05)",
    ("segment", "feature", "method"),
    default_threshold=0.05,
)
"""Its threshold: the adjusted p-value at or below which a segment's feature drifted."""
SEGMENT_MISSING_RATIO = _result(
    "segment_missing_ratio",
    "Share of the segment's rows with the feature missing (from the segment's sample)",
    ("segment", "feature"),
    "ratio",
)
SEGMENT_WINDOW_SAMPLES = _result(
    "segment_window_samples",
    "Rows of the segment in the window",
    ("segment",),
    "rows",
)
SEGMENT_ESTIMATED_PERFORMANCE = _result(
    "segment_estimated_performance",
    "Model quality estimated without labels inside a segment (top-K values of the window's "
    "sample plus __other__), by the model's estimator fitted on the whole reference",
    ("segment", "metric"),
)
SEGMENT_ESTIMATED_PERFORMANCE_LOWER = _result(
    "segment_estimated_performance_lower",
    "Lower end of the segment estimate's sampling band (3 sd at the segment's size)",
    ("segment", "metric"),
)
SEGMENT_ESTIMATED_PERFORMANCE_UPPER = _result(
    "segment_estimated_performance_upper",
    "Upper end of the segment estimate's sampling band (3 sd at the segment's size)",
    ("segment", "metric"),
)

# Counters the ingest path increments.
PREDICTIONS_TOTAL = Metric(
    "ml_predictions_total",
    "counter",
    "Predictions stored (a resent duplicate is not counted again)",
    ("model", "model_version", "status"),
    source="ingest",
)
PREDICTIONS_OVER_LATENCY_SLO_TOTAL = Metric(
    "ml_predictions_over_latency_slo_total",
    "counter",
    "Predictions stored whose latency_ms exceeded the model's SLO latency",
    ("model", "model_version"),
    source="ingest",
)
TOKENS_TOTAL = Metric(
    "ml_tokens_total",
    "counter",
    "LLM tokens of stored predictions and of OTLP gen_ai.client.token.usage (direction in|out)",
    ("model", "model_version", "direction"),
    "tokens",
    source="ingest",
)
LLM_OPERATIONS_TOTAL = Metric(
    "ml_llm_operations_total",
    "counter",
    "GenAI client operations reported by OTLP gen_ai.client.operation.duration",
    ("model", "model_version"),
    source="ingest",
)
LLM_OPERATION_DURATION_SECONDS_TOTAL = Metric(
    "ml_llm_operation_duration_seconds_total",
    "counter",
    "Summed duration of those operations (divide by ml_llm_operations_total for the mean)",
    ("model", "model_version"),
    "seconds",
    source="ingest",
)
INGEST_ROWS_TOTAL = Metric(
    "monitor_ingest_rows_total",
    "counter",
    "Rows accepted by ingest, by kind of data",
    ("kind",),
    source="ingest",
)
INGEST_REJECTED_TOTAL = Metric(
    "monitor_ingest_rejected_total",
    "counter",
    "Records rejected by ingest, by reason",
    ("reason",),
    source="ingest",
)
INGEST_UNPAIRED_TOTAL = Metric(
    "monitor_ingest_unpaired_total",
    "counter",
    "Halves of logged calls stored without their other half, by source and reason",
    ("source", "reason"),
    source="ingest",
)
INGEST_DROPPED_TOTAL = Metric(
    "monitor_ingest_dropped_total",
    "counter",
    "Events a source received and deliberately did not store, by source and reason",
    ("source", "reason"),
    source="ingest",
)

# Health of the scheduled jobs (job_state, exported with the results).
JOB_DURATION_SECONDS = Metric(
    "monitor_job_duration_seconds",
    "gauge",
    "Duration of the job's last run",
    ("job",),
    "seconds",
    "jobs",
)
JOB_LAST_SUCCESS_TIMESTAMP_SECONDS = Metric(
    "monitor_job_last_success_timestamp_seconds",
    "gauge",
    "Unix time the job last finished without a failure",
    ("job",),
    "seconds",
    "jobs",
)
JOB_FAILURES_TOTAL = Metric(
    "monitor_job_failures_total",
    "counter",
    "Job runs that failed for a model",
    ("job",),
    source="jobs",
)

# The retraining webhook outbox.
WEBHOOK_DELIVERIES_TOTAL = Metric(
    "monitor_webhook_deliveries_total",
    "counter",
    "Retraining webhook delivery attempts by outcome (cluster-wide, from the database)",
    ("outcome",),
    source="webhooks",
)
WEBHOOK_EVENTS = Metric(
    "monitor_webhook_events",
    "gauge",
    "Retraining webhook events in the outbox by status",
    ("status",),
    source="webhooks",
)

# `monitor consume`, on the consumer's own /metrics (labels from the command line and bounded
# reason words only: nothing a message carries becomes a label value).
CONSUMER_MESSAGES_TOTAL = Metric(
    "monitor_consumer_messages_total",
    "counter",
    "Messages consumed and acknowledged after their rows were committed",
    ("source", "topic"),
    source="consumer",
)
CONSUMER_REJECTED_TOTAL = Metric(
    "monitor_consumer_rejected_total",
    "counter",
    "Messages that could not be stored (dead-lettered or skipped), by reason",
    ("source", "topic", "reason"),
    source="consumer",
)
CONSUMER_DEAD_LETTERED_TOTAL = Metric(
    "monitor_consumer_dead_lettered_total",
    "counter",
    "Rejected messages published to the dead-letter topic",
    ("source", "topic"),
    source="consumer",
)
CONSUMER_RETRIES_TOTAL = Metric(
    "monitor_consumer_retries_total",
    "counter",
    "Batches held back and retried (not acknowledged), by reason",
    ("source", "reason"),
    source="consumer",
)
CONSUMER_LAG_MESSAGES = Metric(
    "monitor_consumer_lag_messages",
    "gauge",
    "Messages the broker holds for this consumer group that are not yet acknowledged",
    ("source", "topic"),
    "messages",
    "consumer",
)
CONSUMER_LAST_COMMIT_TIMESTAMP_SECONDS = Metric(
    "monitor_consumer_last_commit_timestamp_seconds",
    "gauge",
    "When the consumer last committed a batch and acknowledged it",
    ("source",),
    "seconds",
    "consumer",
)
CONSUMER_BATCH_SECONDS = Metric(
    "monitor_consumer_batch_seconds",
    "histogram",
    "Time from a batch's fetch to its acknowledgement",
    ("source",),
    "seconds",
    "consumer",
)

CATALOGUE: tuple[Metric, ...] = tuple(v for v in tuple(globals().values()) if isinstance(v, Metric))
"""Every metric above, in the order written."""
BY_NAME = {m.name: m for m in CATALOGUE}
RESULTS = {m.result: m for m in CATALOGUE if m.source == "results"}
"""Result figures by the ``Result.metric`` the jobs write."""

# How a model_performance figure (its ``metric`` label) is judged: which way is better.
PERFORMANCE_HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc")
PERFORMANCE_LOWER_IS_BETTER = ("log_loss", "mae", "rmse", "mape")
PERFORMANCE_BASELINE_DAYS = 7
"""A performance figure is compared with its average over this many days."""
