"""Index for per-workspace due counts, a range scan on run_at that stops at now.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_job_workspace_due", "job", ["status", "workspace_id", "run_at"])


def downgrade() -> None:
    op.drop_index("ix_job_workspace_due", table_name="job")
