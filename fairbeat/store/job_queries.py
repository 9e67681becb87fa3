"""What operators ask of the job table: show, list, count, cancel, retry dead letters.

Functions take a Connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.jobs import due, job


def get_job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(job).where(job.c.id == job_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(job.c.status, func.count()).group_by(job.c.status)).all()
    return {status: int(n) for status, n in rows}


def count_by_workspace(
    conn: Connection, job_ids: list[int] | None = None
) -> dict[str, dict[str, int]]:
    """Workspace -> status -> count, over all jobs or only ``job_ids``."""
    query = select(job.c.workspace_id, job.c.status, func.count()).group_by(
        job.c.workspace_id, job.c.status
    )
    if job_ids is not None:
        query = query.where(job.c.id.in_(job_ids))
    rows = conn.execute(query).all()
    out: dict[str, dict[str, int]] = {}
    for workspace_id, status, n in rows:
        out.setdefault(workspace_id, {})[status] = int(n)
    return out


def oldest_due_run_at(conn: Connection, now: datetime) -> datetime | None:
    value: datetime | None = conn.execute(select(func.min(job.c.run_at)).where(due(now))).scalar()
    return value


def list_jobs(
    conn: Connection, *, status: str | None, workspace_id: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(
            job.c.id,
            job.c.workspace_id,
            job.c.kind,
            job.c.status,
            job.c.attempts,
            job.c.max_attempts,
            job.c.run_at,
            job.c.finished_at,
            job.c.last_error,
        )
        .order_by(job.c.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(job.c.status == status)
    if workspace_id:
        query = query.where(job.c.workspace_id == workspace_id)
    return [dict(r) for r in conn.execute(query).mappings()]


def retry_dead(
    conn: Connection, now: datetime, job_ids: list[int] | None, workspace_id: str | None
) -> list[int]:
    """FAILED -> PENDING with fresh attempts; ``job_ids`` None means every dead letter."""
    stmt = update(job).where(job.c.status == JobStatus.FAILED.value)
    if job_ids is not None:
        stmt = stmt.where(job.c.id.in_(job_ids))
    if workspace_id:
        stmt = stmt.where(job.c.workspace_id == workspace_id)
    stmt = stmt.values(
        status=JobStatus.PENDING.value, attempts=0, run_at=now, finished_at=None, claimed_at=None
    ).returning(job.c.id)
    return sorted(int(i) for i in conn.execute(stmt).scalars())


def cancel(conn: Connection, job_ids: list[int], now: datetime) -> list[int]:
    """PENDING or CLAIMED -> CANCELLED. A claimed job's message, when it arrives,
    finds the job no longer claimed and is dropped. RUNNING jobs are left alone."""
    stmt = (
        update(job)
        .where(
            job.c.id.in_(job_ids),
            job.c.status.in_([JobStatus.PENDING.value, JobStatus.CLAIMED.value]),
        )
        .values(status=JobStatus.CANCELLED.value, finished_at=now)
        .returning(job.c.id)
    )
    return sorted(int(i) for i in conn.execute(stmt).scalars())
