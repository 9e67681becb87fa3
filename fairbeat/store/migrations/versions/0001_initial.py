"""Initial schema: job, job_effect, duplicate_event, function_run, workspace.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("run_at", Time, server_default=NOW, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("fence", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claimed_at", Time, nullable=True),
        sa.Column("started_at", Time, nullable=True),
        sa.Column("locked_at", Time, nullable=True),
        sa.Column("locked_by", sa.String(200), nullable=True),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Time, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.UniqueConstraint("workspace_id", "dedupe_key", name="uq_job_workspace_id_dedupe_key"),
    )
    op.create_index(
        "ix_job_due", "job", ["status", "workspace_id", sa.text("priority DESC"), "run_at", "id"]
    )
    op.create_index("ix_job_status_run_at", "job", ["status", "run_at"])

    op.create_table(
        "job_effect",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(128), nullable=False),
        sa.Column("effect_key", sa.String(400), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", Time, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_effect"),
        sa.UniqueConstraint(
            "workspace_id", "effect_key", name="uq_job_effect_workspace_id_effect_key"
        ),
    )

    op.create_table(
        "duplicate_event",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(128), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.String(400), nullable=True),
        sa.Column("created_at", Time, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_duplicate_event"),
    )
    op.create_index("ix_duplicate_event_created", "duplicate_event", ["created_at", "workspace_id"])

    op.create_table(
        "function_run",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("function", sa.String(40), nullable=False),
        sa.Column("window_key", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fence", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("heartbeat_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_function_run"),
        sa.UniqueConstraint("function", "window_key", name="uq_function_run_function_window_key"),
    )
    op.create_index("ix_function_run_status", "function_run", ["status", "heartbeat_at"])

    op.create_table(
        "workspace",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(40), server_default=sa.text("'default'"), nullable=False),
        sa.Column("high_quota_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("weight", sa.Float(), server_default=sa.text("1.0"), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", Time, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspace"),
    )


def downgrade() -> None:
    for table in ("workspace", "function_run", "duplicate_event", "job_effect", "job"):
        op.drop_table(table)
