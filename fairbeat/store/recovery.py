"""Recovery queries: jobs whose worker went silent, claims no worker started.

Every update is conditional on the state that made the job look lost, so a
job that finished, or heartbeated, in the meantime is left alone, and a
SUCCEEDED job is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.jobs import fenced, job

# One maintenance run recovers at most this many jobs; the next run takes the rest.
RECOVERY_BATCH = 1000


@dataclass(frozen=True)
class SilentJob:
    job_id: int
    fence: int
    workspace_id: str
    attempts: int
    max_attempts: int
    locked_by: str | None
    kind: str = ""
    started_at: datetime | None = None
    locked_at: datetime | None = None  # the last heartbeat


def silent_running(conn: Connection, locked_before: datetime) -> list[SilentJob]:
    rows = conn.execute(
        select(
            job.c.id,
            job.c.fence,
            job.c.workspace_id,
            job.c.attempts,
            job.c.max_attempts,
            job.c.locked_by,
            job.c.kind,
            job.c.started_at,
            job.c.locked_at,
        )
        .where(job.c.status == JobStatus.RUNNING.value, job.c.locked_at < locked_before)
        .order_by(job.c.locked_at)
        .limit(RECOVERY_BATCH)
    ).all()
    return [SilentJob(*row) for row in rows]


def recover(
    conn: Connection,
    silent: SilentJob,
    to_status: JobStatus,
    locked_before: datetime,
    now: datetime,
    error: str,
) -> bool:
    """Move a silent RUNNING job on, only if it is still silent under the same fence."""
    values: dict[str, object] = {
        "status": to_status.value,
        "locked_at": None,
        "locked_by": None,
        "last_error": error,
    }
    if to_status == JobStatus.PENDING:
        values |= {"claimed_at": None, "run_at": now}
    else:
        values["finished_at"] = now
    result = conn.execute(
        update(job)
        .where(
            fenced(silent.job_id, silent.fence, JobStatus.RUNNING), job.c.locked_at < locked_before
        )
        .values(**values)
    )
    return result.rowcount == 1


def requeue_undelivered(conn: Connection, claimed_before: datetime) -> list[int]:
    """CLAIMED jobs no worker started in time go back to PENDING (no attempt used)."""
    rows = conn.execute(
        update(job)
        .where(job.c.status == JobStatus.CLAIMED.value, job.c.claimed_at < claimed_before)
        .values(status=JobStatus.PENDING.value, claimed_at=None)
        .returning(job.c.id)
    ).scalars()
    return [int(r) for r in rows]
