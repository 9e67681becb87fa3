"""What operators ask of the job table: show, list, count, cancel, retry dead letters.

Functions take a Connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.dependencies import DependencyPolicy
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import families
from fairbeat.store.jobs import due, job

CANCELLABLE = (
    JobStatus.WAITING.value,
    JobStatus.PENDING.value,
    JobStatus.CLAIMED.value,
    JobStatus.RUNNING.value,
)
# A cancelled job's last_error: this, then the operator's why.
CANCELLED_PREFIX = "CANCELLED: "


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


def cancel(
    conn: Connection,
    job_ids: list[int],
    now: datetime,
    *,
    who: str,
    why: str,
    policy: DependencyPolicy = "fail",
) -> list[int]:
    """WAITING, PENDING, CLAIMED or RUNNING -> CANCELLED, taking the fence, in one
    conditional update; the jobs waiting on a cancelled one then end by
    ``policy`` (FAIRBEAT_DEPENDENCY_FAILURE, :func:`families.settle`).

    With the fence moved on, a claimed job's message is dropped when it
    arrives, and a running attempt can finish nothing: its fenced heartbeat,
    finish and effects match no row. A running job keeps its attempt's
    ``task_id``, so maintenance can terminate the attempt after the grace.
    """
    running = job.c.status == JobStatus.RUNNING.value
    stmt = (
        update(job)
        .where(job.c.id.in_(job_ids), job.c.status.in_(CANCELLABLE))
        .values(
            status=JobStatus.CANCELLED.value,
            fence=job.c.fence + 1,
            finished_at=now,
            locked_at=None,
            task_id=case((running, job.c.task_id), else_=None),
            cancelled_by=who,
            last_error=f"{CANCELLED_PREFIX}{why}",
        )
        .returning(job.c.id)
    )
    cancelled = sorted(int(i) for i in conn.execute(stmt).scalars())
    families.settle_all(conn, cancelled, JobStatus.CANCELLED, policy, now)
    return cancelled


def existing(conn: Connection, job_ids: list[int]) -> set[int]:
    """Which of ``job_ids`` name a job."""
    return {int(i) for i in conn.execute(select(job.c.id).where(job.c.id.in_(job_ids))).scalars()}


def newest_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(job.c.id), 0))).scalar_one())


def workspace_batch(
    conn: Connection, workspace_id: str, statuses: list[str], through_id: int, limit: int
) -> list[int]:
    """Up to ``limit`` ids of ``workspace_id``'s jobs in ``statuses``, oldest first,
    none newer than ``through_id`` (so a backlog that keeps growing still ends)."""
    query = (
        select(job.c.id)
        .where(
            job.c.workspace_id == workspace_id,
            job.c.status.in_(statuses),
            job.c.id <= through_id,
        )
        .order_by(job.c.id)
        .limit(limit)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def cancelled_still_running(
    conn: Connection, before: datetime, limit: int
) -> list[tuple[int, str]]:
    """(job id, task id) of running attempts cancelled before ``before`` that have not ended."""
    query = (
        select(job.c.id, job.c.task_id)
        .where(
            job.c.status == JobStatus.CANCELLED.value,
            job.c.task_id.is_not(None),
            job.c.finished_at <= before,
        )
        .order_by(job.c.finished_at)
        .limit(limit)
    )
    return [(int(r.id), str(r.task_id)) for r in conn.execute(query)]


def forget_tasks(conn: Connection, tasks: list[tuple[int, str]]) -> None:
    """Cancelled jobs whose attempts were terminated: nothing is left to terminate."""
    for job_id, task_id in tasks:
        conn.execute(
            update(job)
            .where(
                job.c.id == job_id,
                job.c.status == JobStatus.CANCELLED.value,
                job.c.task_id == task_id,
            )
            .values(task_id=None)
        )


def live_kinds(conn: Connection, limit: int = 200) -> list[str]:
    """The kinds of jobs not yet finished (pending, claimed or running)."""
    live = [JobStatus.PENDING.value, JobStatus.CLAIMED.value, JobStatus.RUNNING.value]
    query = select(job.c.kind).where(job.c.status.in_(live)).distinct().limit(limit)
    return sorted(str(k) for k in conn.execute(query).scalars())
