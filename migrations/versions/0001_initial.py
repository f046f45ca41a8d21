"""Initial schema: models, partitioned prediction logs, keys, labels, references, events, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("task", sa.Text, nullable=False, server_default="classification"),
        sa.Column("features", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("prediction_kind", sa.Text, nullable=True),
        sa.Column("config", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_table(
        "predictions",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False, server_default=""),
        sa.Column("prediction_id", sa.Text, nullable=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("num", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("cat", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("prediction", sa.Double, nullable=True),
        sa.Column("prediction_text", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Double, nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="ok"),
        sa.Column("variant", sa.Text, nullable=False, server_default="production"),
        sa.Column("gpu_seconds", sa.Double, nullable=True),
        sa.Column("tokens_in", sa.Integer, nullable=True),
        sa.Column("tokens_out", sa.Integer, nullable=True),
        sa.Column("extra", pg.JSONB, nullable=True),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index("ix_predictions_model_ts", "predictions", ["model_id", "ts"])
    op.create_table(
        "prediction_keys",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Text, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "prediction_id", name="pk_prediction_keys"),
    )
    op.create_index("ix_prediction_keys_ts", "prediction_keys", ["ts"], postgresql_using="brin")
    op.create_table(
        "labels",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.Text, nullable=False),
        sa.Column("label", sa.Double, nullable=True),
        sa.Column("label_text", sa.Text, nullable=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("model_id", "prediction_id", name="pk_labels"),
    )
    op.create_table(
        "reference_sets",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("window_from", TS, nullable=True),
        sa.Column("window_to", TS, nullable=True),
        sa.Column("row_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_reference_sets"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_reference_sets_model_id_models",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "uq_reference_sets_active",
        "reference_sets",
        ["model_id", "model_version"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "reference_rows",
        sa.Column("reference_id", sa.Integer, nullable=False),
        sa.Column("num", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("cat", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("prediction", sa.Double, nullable=True),
        sa.Column("prediction_text", sa.Text, nullable=True),
        sa.Column("label", sa.Double, nullable=True),
        sa.Column("label_text", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["reference_sets.id"],
            name="fk_reference_rows_reference_id_reference_sets",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_reference_rows_reference_id", "reference_rows", ["reference_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("load_seconds", sa.Double, nullable=True),
        sa.Column("variant", sa.Text, nullable=True),
        sa.Column("details", pg.JSONB, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_events_model_id_models", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_model_ts", "events", ["model_id", "ts"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )


def downgrade() -> None:
    for table in (
        "api_tokens",
        "events",
        "reference_rows",
        "reference_sets",
        "labels",
        "prediction_keys",
        "predictions",
        "models",
    ):
        op.drop_table(table)
