"""Retention: indexes that let each prune batch find the oldest finished rows without a scan.

Revision ID: 0006_retention_indexes
Revises: 0005_schedules
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006_retention_indexes"
down_revision = "0005_schedules"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_job_status_finished_at", "job", ["status", "finished_at"]),
    ("ix_function_run_finished_at", "function_run", ["finished_at"]),
    ("ix_alert_resolved_at", "alert", ["resolved_at"]),
    ("ix_gate_decision_decided_at", "gate_decision", ["decided_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
