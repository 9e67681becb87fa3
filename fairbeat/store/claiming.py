"""Claiming jobs: PENDING -> CLAIMED with the fence raised, and giving a claim back.

The fair selection (``selection.py``) chooses which ids to claim; this module
owns the claim statement itself. Functions take a Connection; the caller owns
the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import poison
from fairbeat.store.db import is_postgres
from fairbeat.store.jobs import due, fenced, job


@dataclass(frozen=True)
class Claim:
    job_id: int
    fence: int
    workspace_id: str
    kind: str
    priority: int = 0
    run_at: datetime | None = None
    attempts: int = 0  # attempts started before this claim
    priority_class: str = "default"  # as stored; a name no longer configured counts as default

    @property
    def order_key(self) -> tuple[int, datetime | None, int]:
        """A workspace's own order: higher priority first, then run_at, then id."""
        return (-self.priority, self.run_at, self.job_id)


CLAIM_COLUMNS = (
    job.c.id,
    job.c.fence,
    job.c.workspace_id,
    job.c.kind,
    job.c.priority,
    job.c.run_at,
    job.c.attempts,
    job.c.priority_class,
)


def claim_from(row: Any) -> Claim:
    return Claim(
        row.id,
        row.fence,
        row.workspace_id,
        row.kind,
        row.priority,
        row.run_at,
        row.attempts,
        row.priority_class,
    )


def claim_oldest_due(conn: Connection, now: datetime, limit: int) -> list[Claim]:
    """Claim up to ``limit`` due jobs, oldest first: PENDING -> CLAIMED, fence + 1."""
    candidates = select(job.c.id).where(due(now)).order_by(job.c.run_at, job.c.id).limit(limit)
    return claim_ids(conn, candidates, now)


def claim_ids(conn: Connection, candidates: Any, now: datetime, guard: Any = None) -> list[Claim]:
    """Claim the rows a SELECT of job ids names, skipping rows another claimer holds.

    The candidates are a MATERIALIZED CTE, evaluated once: PostgreSQL may run
    an ``IN (SELECT .. LIMIT n FOR UPDATE SKIP LOCKED)`` subquery again per
    row, and so claim more than ``n`` rows.
    """
    if is_postgres(conn):
        candidates = candidates.with_for_update(skip_locked=True)
    claimable = candidates.cte("claimable").prefix_with("MATERIALIZED")
    conditions = [job.c.id == claimable.c.id, job.c.status == JobStatus.PENDING.value]
    if guard is not None:
        conditions.append(guard)
    stmt = (
        update(job)
        .where(*conditions)
        .values(status=JobStatus.CLAIMED.value, fence=job.c.fence + 1, claimed_at=now)
        .returning(*CLAIM_COLUMNS)
    )
    return sorted((claim_from(r) for r in conn.execute(stmt)), key=lambda c: c.order_key)


def release_claim(conn: Connection, claim: Claim) -> bool:
    """Give back a claim whose message may not have reached the broker: CLAIMED ->
    PENDING, fence kept. A message of it that did arrive is dropped by the fence:
    its job is PENDING, or claimed again under a higher fence."""
    result = conn.execute(
        update(job)
        .where(fenced(claim.job_id, claim.fence, JobStatus.CLAIMED))
        .values(status=JobStatus.PENDING.value, claimed_at=None)
    )
    return result.rowcount == 1


def due_in_workspace(
    conn: Connection, workspace: str, now: datetime, limit: int, priority_class: str | None = None
) -> Any:
    """The ids of ``workspace``'s due jobs in the order they start: priority, then
    run_at, then id; loadable rows only (see :mod:`fairbeat.store.poison`). With
    ``priority_class``, only the jobs stored with that class (``ix_job_class_due``)."""
    conditions = [
        job.c.status == JobStatus.PENDING.value,
        job.c.workspace_id == workspace,
        job.c.run_at <= now,
        poison.claimable(conn),
    ]
    if priority_class is not None:
        conditions.append(job.c.priority_class == priority_class)
    return (
        select(job.c.id)
        .where(*conditions)
        .order_by(job.c.priority.desc(), job.c.run_at, job.c.id)
        .limit(limit)
    )
