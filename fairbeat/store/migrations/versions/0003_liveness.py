"""Liveness and observability: health snapshots, alert episodes, health indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_job_started_at", "job", ["started_at"])
    op.create_index("ix_job_finished_at", "job", ["finished_at"])
    op.create_index("ix_function_run_fence", "function_run", ["function", "fence"])
    op.create_table(
        "health_snapshot",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("taken_at", Time, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_health_snapshot"),
    )
    op.create_index("ix_health_snapshot_taken_at", "health_snapshot", ["taken_at"])
    op.create_table(
        "alert",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("episode", sa.String(80), nullable=False),
        sa.Column("fired_at", Time, nullable=False),
        sa.Column("resolved_at", Time, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        sa.UniqueConstraint("kind", "episode", name="uq_alert_kind_episode"),
    )
    op.create_index("ix_alert_open", "alert", ["kind", "resolved_at"])


def downgrade() -> None:
    op.drop_table("alert")
    op.drop_table("health_snapshot")
    op.drop_index("ix_function_run_fence", table_name="function_run")
    op.drop_index("ix_job_finished_at", table_name="job")
    op.drop_index("ix_job_started_at", table_name="job")
