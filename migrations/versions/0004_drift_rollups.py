"""Drift: frozen reference profiles, per-bucket rollups, BRIN on predictions.received_at.

Chained after 0005 (which already revises 0003), so the history stays a single line:
0003 -> 0005 -> 0004. Do not re-point 0005 at this revision; that would make a cycle.

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def _numbers() -> list[sa.Column[Any]]:
    return [
        sa.Column("bins", pg.ARRAY(sa.Integer), nullable=True),
        sa.Column("counts", pg.ARRAY(sa.BigInteger), nullable=True),
        sa.Column("sums", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("sumsq", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("categories", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("n_other", sa.BigInteger, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    op.create_index(
        "ix_predictions_received_at", "predictions", ["received_at"], postgresql_using="brin"
    )
    op.create_table(
        "drift_profiles",
        sa.Column("reference_id", sa.Integer, nullable=False),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("built_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("watermark", TS, nullable=True),
        sa.Column("covered_from", TS, nullable=True),
        sa.PrimaryKeyConstraint("reference_id", name="pk_drift_profiles"),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["reference_sets.id"],
            name="fk_drift_profiles_reference_id_reference_sets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_drift_profiles_model_id_models",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "drift_profile_columns",
        sa.Column("reference_id", sa.Integer, nullable=False),
        sa.Column("col", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("n_missing", sa.BigInteger, nullable=False),
        sa.Column("n_unique", sa.Integer, nullable=False),
        sa.Column("min", sa.Double, nullable=True),
        sa.Column("max", sa.Double, nullable=True),
        sa.Column("mean", sa.Double, nullable=True),
        sa.Column("std", sa.Double, nullable=True),
        sa.Column("edges", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("psi_edges", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("counts", pg.ARRAY(sa.BigInteger), nullable=True),
        sa.Column("sums", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("sumsq", pg.ARRAY(sa.Double), nullable=True),
        sa.Column("categories", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("n_other", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("reference_id", "col", name="pk_drift_profile_columns"),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["drift_profiles.reference_id"],
            name="fk_drift_profile_columns_reference_id_drift_profiles",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "drift_rollups",
        sa.Column("reference_id", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("span_seconds", sa.Integer, nullable=False),
        sa.Column("bucket", TS, nullable=False),
        sa.Column("col", sa.Integer, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("n_missing", sa.BigInteger, nullable=False),
        *_numbers(),
        sa.PrimaryKeyConstraint(
            "reference_id",
            "model_version",
            "span_seconds",
            "bucket",
            "col",
            name="pk_drift_rollups",
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["drift_profiles.reference_id"],
            name="fk_drift_rollups_reference_id_drift_profiles",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("drift_rollups")
    op.drop_table("drift_profile_columns")
    op.drop_table("drift_profiles")
    op.drop_index("ix_predictions_received_at", table_name="predictions")
