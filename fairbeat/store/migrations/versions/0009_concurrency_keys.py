"""Concurrency keys: at most N jobs of one key in flight, within or across workspaces.

Revision ID: 0009_concurrency_keys
Revises: 0008_row_checks
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_concurrency_keys"
down_revision = "0008_row_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_concurrency_key",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("max_in_flight", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "key", name="pk_job_concurrency_key"),
    )
    op.create_index("ix_job_concurrency_key_scope_key", "job_concurrency_key", ["scope", "key"])


def downgrade() -> None:
    op.drop_index("ix_job_concurrency_key_scope_key", table_name="job_concurrency_key")
    op.drop_table("job_concurrency_key")
