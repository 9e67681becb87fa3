"""Per-workspace schedules: recurring jobs created at run time.

Revision ID: 0005_schedules
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_schedules"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column("missed", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("next_slot", Time, nullable=True),
        sa.Column("last_slot", Time, nullable=True),
        sa.Column("last_job_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Time, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.CheckConstraint("(cron IS NULL) <> (every_s IS NULL)", name="ck_schedule_cron_or_every"),
        sa.PrimaryKeyConstraint("id", name="pk_schedule"),
    )
    op.create_index("ix_schedule_due", "schedule", ["paused", "next_slot"])
    op.create_index("ix_schedule_workspace_id", "schedule", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_workspace_id", table_name="schedule")
    op.drop_index("ix_schedule_due", table_name="schedule")
    op.drop_table("schedule")
