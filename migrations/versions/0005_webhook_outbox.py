"""Retraining webhooks: the outbox, per-model cooldowns and persisted delivery counts.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("window", sa.Text, nullable=False, server_default=""),
        sa.Column("payload", pg.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_webhook_events"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_webhook_events_model_id_models",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "reason IN ('drift', 'performance', 'alert')", name="ck_webhook_events_reason"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name="ck_webhook_events_status"
        ),
    )
    op.create_index(
        "ix_webhook_events_due",
        "webhook_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_webhook_events_model_created", "webhook_events", ["model_id", "created_at"])
    op.create_table(
        "webhook_cooldowns",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("enqueued_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_webhook_cooldowns"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_webhook_cooldowns_model_id_models",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "webhook_delivery_counts",
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("outcome", name="pk_webhook_delivery_counts"),
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery_counts")
    op.drop_table("webhook_cooldowns")
    op.drop_table("webhook_events")
