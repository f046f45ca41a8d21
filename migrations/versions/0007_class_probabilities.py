"""Per-class probabilities of classifier predictions and reference rows (multiclass CBPE).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a nullable column with no default: metadata only, no table rewrite (partitions included)
    op.add_column("predictions", sa.Column("probabilities", pg.JSONB, nullable=True))
    op.add_column("reference_rows", sa.Column("probabilities", pg.JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("reference_rows", "probabilities")
    op.drop_column("predictions", "probabilities")
