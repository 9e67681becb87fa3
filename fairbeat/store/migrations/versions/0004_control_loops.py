"""Control loops: gate decisions, operator actions, per-workspace rate limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("workspace") as batch:
        batch.add_column(sa.Column("rate_limit_per_s", sa.Float(), nullable=True))
    op.create_table(
        "gate_decision",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("window", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(128), nullable=False),
        sa.Column("from_quota", sa.Integer(), nullable=False),
        sa.Column("to_quota", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("decided_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_decision"),
        sa.UniqueConstraint("window", "workspace_id", name="uq_gate_decision_window_workspace_id"),
    )
    op.create_table(
        "operator_action",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_action"),
    )


def downgrade() -> None:
    op.drop_table("operator_action")
    op.drop_table("gate_decision")
    with op.batch_alter_table("workspace") as batch:
        batch.drop_column("rate_limit_per_s")
