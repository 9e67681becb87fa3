"""Cancel running jobs: the running attempt's Celery task id, and who cancelled.

Revision ID: 0007_cancel
Revises: 0006_retention_indexes
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_cancel"
down_revision = "0006_retention_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("task_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("cancelled_by")
        batch.drop_column("task_id")
