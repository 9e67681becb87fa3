"""Child jobs and dependencies: a parent link, and jobs that run after others.

Revision ID: 0010_job_dependencies
Revises: 0009_concurrency_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_job_dependencies"
down_revision = "0009_concurrency_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: SQLite's copy of the table would lose
    # ix_job_due's expression (priority DESC), which it cannot reflect.
    op.add_column("job", sa.Column("parent_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "job", sa.Column("waiting_on", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.create_index("ix_job_parent_id", "job", ["parent_id"])
    op.create_table(
        "job_dependency",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("depends_on", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "depends_on", name="pk_job_dependency"),
    )
    op.create_index("ix_job_dependency_depends_on", "job_dependency", ["depends_on"])


def downgrade() -> None:
    op.drop_index("ix_job_dependency_depends_on", table_name="job_dependency")
    op.drop_table("job_dependency")
    op.drop_index("ix_job_parent_id", table_name="job")
    op.drop_column("job", "waiting_on")
    op.drop_column("job", "parent_id")
