"""Priority classes across workspaces: a job's class, and the indexes that
count and claim due jobs per class and workspace without reading the backlog.

Revision ID: 0011_priority_class
Revises: 0010_job_dependencies
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_priority_class"
down_revision = "0010_job_dependencies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode (see 0010); existing rows become 'default'.
    op.add_column(
        "job",
        sa.Column(
            "priority_class", sa.String(32), server_default=sa.text("'default'"), nullable=False
        ),
    )
    op.create_index(
        "ix_job_class_due",
        "job",
        ["status", "priority_class", "workspace_id", sa.text("priority DESC"), "run_at", "id"],
    )
    op.create_index(
        "ix_job_class_workspace_due", "job", ["status", "priority_class", "workspace_id", "run_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_job_class_workspace_due", table_name="job")
    op.drop_index("ix_job_class_due", table_name="job")
    op.drop_column("job", "priority_class")
