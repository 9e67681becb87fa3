"""The fenced worker steps: start, heartbeat, succeed, retry later, fail.

Each is one conditional update on :func:`fairbeat.store.jobs.fenced`, so a
stale or repeated delivery changes nothing; :func:`record_dropped_delivery`
says why it was dropped. Functions take a Connection; the caller owns the
transaction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Update

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.jobs import fenced, fenced_by_params, job
from fairbeat.store.models import UTCDateTime, duplicate_event_table

# Why a delivery was dropped without running anything.
STALE_FENCE = "STALE_FENCE"  # the job was claimed again since this message was sent
REPEATED_DELIVERY = "REPEATED_DELIVERY"  # the same claim was delivered before
NOT_CLAIMED = "NOT_CLAIMED"  # cancelled or given back since
UNKNOWN_JOB = "UNKNOWN_JOB"


@dataclass(frozen=True)
class StartedJob:
    job_id: int
    fence: int
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


def start(
    conn: Connection,
    job_id: int,
    fence: int,
    now: datetime,
    worker: str,
    task_id: str | None = None,
) -> StartedJob | None:
    """CLAIMED -> RUNNING for exactly this claim; None when the message is stale or repeated.

    ``task_id`` is the Celery task id of this run, what a cancel terminates.
    """
    params = {"job_id_": job_id, "fence_": fence, "now_": now, "worker_": worker}
    row = conn.execute(_start_statement(), {**params, "task_id_": task_id}).one_or_none()
    if row is None:
        return None
    return StartedJob(
        job_id=job_id,
        fence=fence,
        workspace_id=row.workspace_id,
        kind=row.kind,
        payload=row.payload,
        attempt=row.attempts,
        max_attempts=row.max_attempts,
    )


def record_dropped_delivery(conn: Connection, job_id: int, fence: int, now: datetime) -> str:
    """Count a delivery the fence refused, and say why."""
    row = conn.execute(
        select(job.c.workspace_id, job.c.fence, job.c.status).where(job.c.id == job_id)
    ).one_or_none()
    if row is None:
        return UNKNOWN_JOB
    if row.fence != fence:
        reason = STALE_FENCE
    elif row.status == JobStatus.PENDING.value or row.status == JobStatus.CANCELLED.value:
        reason = NOT_CLAIMED
    else:
        reason = REPEATED_DELIVERY
    conn.execute(
        duplicate_event_table.insert().values(
            workspace_id=row.workspace_id,
            job_id=job_id,
            fence=fence,
            reason=reason,
            detail=f"job fence {row.fence}, status {row.status}",
            created_at=now,
        )
    )
    return reason


def _update_running(conn: Connection, job_id: int, fence: int, **values: Any) -> bool:
    result = conn.execute(
        update(job).where(fenced(job_id, fence, JobStatus.RUNNING)).values(**values)
    )
    return result.rowcount == 1


def _finish(conn: Connection, job_id: int, fence: int, **values: Any) -> bool:
    return _update_running(
        conn, job_id, fence, locked_at=None, locked_by=None, task_id=None, **values
    )


@functools.cache
def _start_statement() -> Update:
    now = bindparam("now_", type_=UTCDateTime())
    return (
        update(job)
        .where(fenced_by_params(JobStatus.CLAIMED))
        .values(
            status=JobStatus.RUNNING.value,
            attempts=job.c.attempts + 1,
            started_at=now,
            locked_at=now,
            locked_by=bindparam("worker_"),
            task_id=bindparam("task_id_"),
        )
        .returning(
            job.c.workspace_id, job.c.kind, job.c.payload, job.c.attempts, job.c.max_attempts
        )
    )


@functools.cache
def succeeded_statement() -> Update:
    """The fenced RUNNING -> SUCCEEDED update, built once (to embed in another):
    parameters :func:`success_params`."""
    return (
        update(job)
        .where(fenced_by_params(JobStatus.RUNNING))
        .values(
            status=JobStatus.SUCCEEDED.value,
            finished_at=bindparam("now_", type_=UTCDateTime()),
            locked_at=None,
            locked_by=None,
        )
    )


def success_params(job_id: int, fence: int, now: datetime) -> dict[str, Any]:
    return {"job_id_": job_id, "fence_": fence, "now_": now}


def succeed(conn: Connection, job_id: int, fence: int, now: datetime) -> bool:
    return conn.execute(succeeded_statement(), success_params(job_id, fence, now)).rowcount == 1


def retry_later(conn: Connection, job_id: int, fence: int, run_at: datetime, error: str) -> bool:
    return _finish(
        conn,
        job_id,
        fence,
        status=JobStatus.PENDING.value,
        run_at=run_at,
        claimed_at=None,
        last_error=error,
    )


def fail(conn: Connection, job_id: int, fence: int, now: datetime, error: str) -> bool:
    return _finish(
        conn, job_id, fence, status=JobStatus.FAILED.value, finished_at=now, last_error=error
    )


def heartbeat(conn: Connection, job_id: int, fence: int, now: datetime) -> bool:
    """Refresh the lock; False means this run lost its claim and should stop."""
    return _update_running(conn, job_id, fence, locked_at=now)


def was_cancelled(conn: Connection, job_id: int, task_id: str | None) -> bool:
    """Whether the job of a refused finish was cancelled; then its attempt has ended,
    so this run's ``task_id`` is no longer one to terminate."""
    status = conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()
    if status != JobStatus.CANCELLED.value:
        return False
    if task_id is not None:
        conn.execute(
            update(job).where(job.c.id == job_id, job.c.task_id == task_id).values(task_id=None)
        )
    return True


def fence_taken(conn: Connection, job_id: int, fence: int) -> bool:
    """Whether the attempt holding ``fence`` was cancelled, or its job claimed again since."""
    row = conn.execute(select(job.c.fence, job.c.status).where(job.c.id == job_id)).one_or_none()
    return row is None or row.fence != fence or row.status == JobStatus.CANCELLED.value


def heartbeat_many(conn: Connection, claims: list[tuple[int, int]], now: datetime) -> set[int]:
    """Refresh the locks of these (job id, fence) claims still RUNNING, in one
    statement; the ids refreshed (a claim missing lost its job)."""
    if not claims:
        return set()
    each = [fenced(job_id, fence, JobStatus.RUNNING) for job_id, fence in claims]
    rows = conn.execute(update(job).where(or_(*each)).values(locked_at=now).returning(job.c.id))
    return {int(i) for i in rows.scalars()}
