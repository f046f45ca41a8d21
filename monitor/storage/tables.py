"""The one schema source. Alembic migrations create these tables; nothing else does.

Prediction logs keep features as typed arrays, not JSONB: ``num`` holds the numeric features and
``cat`` the categorical ones, each in the order fixed by the model's feature schema
(``models.features``, append-only). See docs/architecture.md for the measurements behind it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, UUID

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

TS = TIMESTAMP(timezone=True)

models = Table(
    "models",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("task", Text, nullable=False, server_default="classification"),
    # [{"name": "amount", "kind": "numeric"}, ...]; position among its kind = array index
    Column("features", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("prediction_kind", Text, nullable=True),
    Column("config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

predictions = Table(
    "predictions",
    metadata,
    Column("model_id", Integer, nullable=False),
    Column("model_version", Text, nullable=False, server_default=""),
    Column("prediction_id", Text, nullable=True),
    Column("ts", TS, nullable=False),
    Column("received_at", TS, nullable=False, server_default=func.now()),
    Column("num", ARRAY(Double), nullable=True),
    Column("cat", ARRAY(Text), nullable=True),
    Column("prediction", Double, nullable=True),
    Column("prediction_text", Text, nullable=True),
    Column("latency_ms", Double, nullable=True),
    Column("status", Text, nullable=False, server_default="ok"),
    Column("variant", Text, nullable=False, server_default="production"),
    Column("gpu_seconds", Double, nullable=True),
    Column("tokens_in", Integer, nullable=True),
    Column("tokens_out", Integer, nullable=True),
    # a classifier's score per class, {"class": p} (migration 0007)
    Column("probabilities", JSONB, nullable=True),
    # whatever the client sent that has no typed home: unknown features, extra fields
    Column("extra", JSONB, nullable=True),
    Index("ix_predictions_model_ts", "model_id", "ts"),
    postgresql_partition_by="RANGE (ts)",
)

# Uniqueness of (model, prediction_id) across all partitions: a partitioned table can only
# enforce keys that contain the partition column, so ingest claims ids here first.
prediction_keys = Table(
    "prediction_keys",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", Text, primary_key=True),
    Column("ts", TS, nullable=False),
    Index("ix_prediction_keys_ts", "ts", postgresql_using="brin"),
)

labels = Table(
    "labels",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", Text, primary_key=True),
    Column("label", Double, nullable=True),
    Column("label_text", Text, nullable=True),
    Column("ts", TS, nullable=False),
    Column("received_at", TS, nullable=False, server_default=func.now()),
)

reference_sets = Table(
    "reference_sets",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("model_version", Text, nullable=False, server_default=""),
    Column("source", Text, nullable=False),  # "upload" | "window"
    Column("window_from", TS, nullable=True),
    Column("window_to", TS, nullable=True),
    Column("row_count", BigInteger, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Index(
        "uq_reference_sets_active",
        "model_id",
        "model_version",
        unique=True,
        postgresql_where=text("active"),
    ),
)

reference_rows = Table(
    "reference_rows",
    metadata,
    Column(
        "reference_id",
        Integer,
        ForeignKey("reference_sets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("num", ARRAY(Double), nullable=True),
    Column("cat", ARRAY(Text), nullable=True),
    Column("prediction", Double, nullable=True),
    Column("prediction_text", Text, nullable=True),
    Column("label", Double, nullable=True),
    Column("label_text", Text, nullable=True),
    Column("probabilities", JSONB, nullable=True),
    Index("ix_reference_rows_reference_id", "reference_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("model_version", Text, nullable=False, server_default=""),
    Column("kind", Text, nullable=False),  # deployed | rolled_back | model_loaded
    Column("ts", TS, nullable=False),
    Column("load_seconds", Double, nullable=True),
    Column("variant", Text, nullable=True),
    Column("details", JSONB, nullable=True),
    Index("ix_events_model_ts", "model_id", "ts"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("token_sha256", Text, nullable=False, unique=True),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("revoked_at", TS, nullable=True),
)


def _result_columns() -> list[Column[Any]]:
    return [
        Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        Column("model_version", Text, primary_key=True),
        Column("window", Text, primary_key=True),
        Column("metric", Text, primary_key=True),  # Prometheus name without the ml_ prefix
        Column("labels", JSONB, primary_key=True, server_default=text("'{}'::jsonb")),
        Column("value", Double, nullable=True),
        Column("details", JSONB, nullable=True),
        Column("computed_at", TS, nullable=False, server_default=func.now()),
    ]


# Every computed figure, per window end: the history behind GET /v1/models/{m}/drift.
results = Table(
    "results",
    metadata,
    *_result_columns(),
    Column("window_end", TS, primary_key=True),
    Index("ix_results_model_end", "model_id", "window_end"),
)

# The newest value of every series: what the Prometheus collector reads at scrape time.
latest_results = Table(
    "latest_results",
    metadata,
    *_result_columns(),
    Column("window_end", TS, nullable=False),
)


# The retraining-webhook outbox: written in the transaction that decides to retrain, delivered
# later by the dispatcher (monitor.webhooks). ``payload`` is the JSON body as it will be sent.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("model_version", Text, nullable=False, server_default=""),
    Column("reason", Text, nullable=False),  # drift | performance | alert
    Column("window", Text, nullable=False, server_default=""),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),  # pending|delivered|dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TS, nullable=False, server_default=func.now()),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("delivered_at", TS, nullable=True),
    CheckConstraint("reason IN ('drift', 'performance', 'alert')", name="ck_webhook_events_reason"),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="ck_webhook_events_status"),
    Index("ix_webhook_events_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_webhook_events_model_created", "model_id", "created_at"),
)

# One row per model: when its last retraining event was enqueued. Enqueueing upserts this row
# only if the cooldown has passed, so the row lock makes "one per model per cooldown" atomic
# across replicas.
webhook_cooldowns = Table(
    "webhook_cooldowns",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("enqueued_at", TS, nullable=False),
)

# monitor_webhook_deliveries_total, persisted: every replica exports the same totals.
webhook_delivery_counts = Table(
    "webhook_delivery_counts",
    metadata,
    Column("outcome", Text, primary_key=True),  # delivered | retry | dead
    Column("total", BigInteger, nullable=False, server_default="0"),
)

# Health of the scheduled jobs, one row per job, so every replica's /metrics reports the same
# monitor_job_* values whichever replica ran the job.
job_state = Table(
    "job_state",
    metadata,
    Column("job", Text, primary_key=True),
    Column("runs_total", BigInteger, nullable=False, server_default="0"),
    Column("failures_total", BigInteger, nullable=False, server_default="0"),
    Column("last_started_at", TS, nullable=True),
    Column("last_finished_at", TS, nullable=True),
    Column("last_duration_seconds", Double, nullable=True),
    Column("last_success_at", TS, nullable=True),
    Column("last_error", Text, nullable=True),
)

# Scheduler ticks claimed by a replica: the first to insert (job, tick) runs it, the others skip.
job_leases = Table(
    "job_leases",
    metadata,
    Column("job", Text, primary_key=True),
    Column("tick", TS, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("claimed_at", TS, nullable=False, server_default=func.now()),
    Column("finished_at", TS, nullable=True),
)

# --- Drift (migration 0004): frozen reference profiles and per-time-bucket rollups. ---------
# See docs/drift.md. A profile is computed once per reference set; rollups hold the current
# data binned on the profile's frozen edges, per model version, hour and day bucket and column.

# Rows newer than a rollup watermark are found by ``received_at``; BRIN because rows are appended
# in (roughly) arrival order, so the index stays a few pages and costs ingest nothing measurable.
Index("ix_predictions_received_at", predictions.c.received_at, postgresql_using="brin")

drift_profiles = Table(
    "drift_profiles",
    metadata,
    Column(
        "reference_id",
        Integer,
        ForeignKey("reference_sets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("signature", Text, nullable=False),  # binning parameters; a change rebuilds
    Column("row_count", BigInteger, nullable=False),
    Column("built_at", TS, nullable=False, server_default=func.now()),
    # drift_rollups hold exactly the rows with received_at < watermark and ts >= covered_from
    Column("watermark", TS, nullable=True),
    Column("covered_from", TS, nullable=True),
)

# One row per profiled column: col 0.. in profile order; role feature | prediction | label |
# schema (unknown features), kind numeric | categorical, position = 1-based index in num / cat.
drift_profile_columns = Table(
    "drift_profile_columns",
    metadata,
    Column(
        "reference_id",
        Integer,
        ForeignKey("drift_profiles.reference_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("col", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("position", Integer, nullable=True),
    Column("n", BigInteger, nullable=False),
    Column("n_missing", BigInteger, nullable=False),
    Column("n_unique", Integer, nullable=False),
    Column("min", Double, nullable=True),
    Column("max", Double, nullable=True),
    Column("mean", Double, nullable=True),
    Column("std", Double, nullable=True),
    Column("edges", ARRAY(Double), nullable=True),  # interior edges of the fine bins
    Column("psi_edges", ARRAY(Double), nullable=True),  # a subset of edges
    Column("counts", ARRAY(BigInteger), nullable=True),  # per fine bin, or per category
    Column("sums", ARRAY(Double), nullable=True),
    Column("sumsq", ARRAY(Double), nullable=True),
    Column("categories", ARRAY(Text), nullable=True),
    Column("n_other", BigInteger, nullable=False, server_default="0"),
)

# Sparse per-bucket rollups: numeric columns keep (bins, counts, sums, sumsq) of non-empty fine
# bins; categorical columns keep (categories, counts) and n_other beyond the category cap.
drift_rollups = Table(
    "drift_rollups",
    metadata,
    Column(
        "reference_id",
        Integer,
        ForeignKey("drift_profiles.reference_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("model_version", Text, primary_key=True),
    Column("span_seconds", Integer, primary_key=True),  # 3600 (hour) | 86400 (day)
    Column("bucket", TS, primary_key=True),
    Column("col", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("n_missing", BigInteger, nullable=False),
    Column("bins", ARRAY(Integer), nullable=True),
    Column("counts", ARRAY(BigInteger), nullable=True),
    Column("sums", ARRAY(Double), nullable=True),
    Column("sumsq", ARRAY(Double), nullable=True),
    Column("categories", ARRAY(Text), nullable=True),
    Column("n_other", BigInteger, nullable=False, server_default="0"),
)

# --- Integrations (migration 0006). ----------------------------------------------------------
# One half of a logged call (a KServe/Seldon request or response event, a broker's inputs or
# outputs message) waiting for the other, keyed by the call's id. Kept in PostgreSQL so a
# restart between the halves loses nothing; bounded in number by the receiver, and stored
# alone once it has waited longer than the configured pairing wait.
integration_pending = Table(
    "integration_pending",
    metadata,
    Column("source", Text, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("pair_key", Text, primary_key=True),
    Column("request", JSONB, nullable=True),
    Column("response", JSONB, nullable=True),
    Column("received_at", TS, nullable=False, server_default=func.now()),
)
Index("ix_integration_pending_received_at", integration_pending.c.received_at)

# The versions and variants a model has stored, so the cardinality guard can refuse the next
# one over the cap without scanning predictions (each value becomes Prometheus series).
model_labels = Table(
    "model_labels",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("first_seen", TS, nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('version', 'variant')", name="ck_model_labels_kind"),
)
