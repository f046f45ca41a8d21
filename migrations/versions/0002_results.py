"""Computed results: full history and the latest value of every series.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("window", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("labels", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("details", pg.JSONB, nullable=True),
        sa.Column("computed_at", TS, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "results",
        *_columns(),
        sa.PrimaryKeyConstraint(
            "model_id",
            "model_version",
            "window",
            "metric",
            "labels",
            "window_end",
            name="pk_results",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_results_model_id_models", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_results_model_end", "results", ["model_id", "window_end"])
    op.create_table(
        "latest_results",
        *_columns(),
        sa.PrimaryKeyConstraint(
            "model_id", "model_version", "window", "metric", "labels", name="pk_latest_results"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_latest_results_model_id_models",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("latest_results")
    op.drop_table("results")
