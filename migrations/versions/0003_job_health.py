"""Scheduled job health (job_state) and per-tick scheduler leases (job_leases).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = pg.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_state",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("runs_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failures_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_started_at", TS, nullable=True),
        sa.Column("last_finished_at", TS, nullable=True),
        sa.Column("last_duration_seconds", sa.Double, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("job", name="pk_job_state"),
    )
    op.create_table(
        "job_leases",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("tick", TS, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("claimed_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("job", "tick", name="pk_job_leases"),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("job_state")
