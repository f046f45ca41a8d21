"""Integrations: pending halves of logged calls, and the versions/variants each model stored.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "integration_pending",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("pair_key", sa.Text, nullable=False),
        sa.Column("request", pg.JSONB, nullable=True),
        sa.Column("response", pg.JSONB, nullable=True),
        sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("source", "model", "pair_key", name="pk_integration_pending"),
    )
    op.create_index("ix_integration_pending_received_at", "integration_pending", ["received_at"])
    op.create_table(
        "model_labels",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("first_seen", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("model_id", "kind", "value", name="pk_model_labels"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_model_labels_model_id_models", ondelete="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('version', 'variant')", name="ck_model_labels_kind"),
    )
    # what was stored before the guard existed counts against its caps
    op.execute(
        "INSERT INTO model_labels (model_id, kind, value) "
        "SELECT p.model_id, 'version', p.model_version FROM predictions p "
        "JOIN models m ON m.id = p.model_id "
        "UNION SELECT p.model_id, 'variant', p.variant FROM predictions p "
        "JOIN models m ON m.id = p.model_id "
        "ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("model_labels")
    op.drop_index("ix_integration_pending_received_at", table_name="integration_pending")
    op.drop_table("integration_pending")
