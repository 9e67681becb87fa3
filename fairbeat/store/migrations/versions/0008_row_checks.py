"""Row checks on PostgreSQL: times every driver can load, sane counters and workspace limits.

The job table is a plain-SQL contract, and it accepted what no loop can use:
``run_at = '-infinity'`` failed every dispatch tick for every workspace, a
weight of NaN or a rate limit of ``inf`` failed every plan. These CHECK
constraints refuse such rows at the door. Rows already there are repaired
first, in the same transaction (a job with an unloadable run_at is
dead-lettered as FAILED with the value in last_error, a workspace's unusable
weight or rate limit goes back to the default), so every constraint is
validated and a later update of an old row can never fail on it.

SQLite can only add a CHECK by rebuilding the table; there the loops'
own isolation (store/poison.py, scheduling/limits.py) is the guard.

Revision ID: 0008_row_checks
Revises: 0007_cancel
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008_row_checks"
down_revision = "0007_cancel"
branch_labels = None
depends_on = None

# Kept in step with fairbeat/store/models.py (the same names and expressions).
RUN_AT_LOADABLE = "run_at >= '0001-01-02 00:00:00+00' AND run_at < '9999-12-30 00:00:00+00'"
JOB_CHECKS = {
    "ck_job_run_at_loadable": RUN_AT_LOADABLE,
    "ck_job_attempts_nonnegative": "attempts >= 0",
    "ck_job_max_attempts_positive": "max_attempts >= 1",
    "ck_job_fence_nonnegative": "fence >= 0",
}
# NaN compares greater than every number on PostgreSQL, so these refuse it too.
WEIGHT_USABLE = "weight >= 0.1 AND weight <= 100"
RATE_LIMIT_USABLE = (
    "rate_limit_per_s IS NULL OR rate_limit_per_s = 0"
    " OR (rate_limit_per_s >= 0.001 AND rate_limit_per_s <= 1000000)"
)
WORKSPACE_CHECKS = {
    "ck_workspace_weight_usable": WEIGHT_USABLE,
    "ck_workspace_rate_limit_usable": RATE_LIMIT_USABLE,
}

REPAIR_RUN_AT = f"""
UPDATE job SET
    status = CASE WHEN status IN ('PENDING', 'CLAIMED') THEN 'FAILED' ELSE status END,
    last_error = CASE WHEN status IN ('PENDING', 'CLAIMED')
        THEN 'POISON_RUN_AT: run_at ' || run_at::text || ' is not a time fairbeat can schedule'
             || ' (a finite timestamp with a zone, years 1 to 9999); dead-lettered by migration'
             || ' 0010: fix the row and run `fairbeat jobs retry`'
        ELSE last_error END,
    finished_at = CASE WHEN status IN ('PENDING', 'CLAIMED') THEN now() ELSE finished_at END,
    claimed_at = CASE WHEN status IN ('PENDING', 'CLAIMED') THEN NULL ELSE claimed_at END,
    run_at = now()
WHERE NOT ({RUN_AT_LOADABLE})
"""
REPAIRS = [
    REPAIR_RUN_AT,
    "UPDATE job SET attempts = 0 WHERE attempts < 0",
    "UPDATE job SET max_attempts = 1 WHERE max_attempts < 1",
    "UPDATE job SET fence = 0 WHERE fence < 0",
    f"UPDATE workspace SET weight = 1.0 WHERE NOT ({WEIGHT_USABLE})",
    f"UPDATE workspace SET rate_limit_per_s = NULL WHERE NOT ({RATE_LIMIT_USABLE})",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in REPAIRS:
        op.execute(statement)
    for name, condition in JOB_CHECKS.items():
        op.create_check_constraint(name, "job", condition)
    for name, condition in WORKSPACE_CHECKS.items():
        op.create_check_constraint(name, "workspace", condition)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in WORKSPACE_CHECKS:
        op.drop_constraint(name, "workspace", type_="check")
    for name in JOB_CHECKS:
        op.drop_constraint(name, "job", type_="check")
