"""Job queries: insert, claim, fenced start and finish, counts.

Every worker-side write is a conditional update on (id, fence, expected
status): a message whose fence is old, or that arrives twice, changes nothing.
Functions take a Connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.db import insert_ignoring_conflicts, is_postgres
from fairbeat.store.models import duplicate_event_table, job_table

job = job_table
duplicate_event = duplicate_event_table

# Why a delivery was dropped without running anything.
STALE_FENCE = "STALE_FENCE"  # the job was claimed again since this message was sent
REPEATED_DELIVERY = "REPEATED_DELIVERY"  # the same claim was delivered before
NOT_CLAIMED = "NOT_CLAIMED"  # cancelled or given back since
UNKNOWN_JOB = "UNKNOWN_JOB"


@dataclass(frozen=True)
class NewJob:
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    run_at: datetime
    priority: int
    max_attempts: int
    dedupe_key: str | None
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    job_id: int
    fence: int
    workspace_id: str
    kind: str
    priority: int = 0
    run_at: datetime | None = None

    @property
    def order_key(self) -> tuple[int, datetime | None, int]:
        """A workspace's own order: higher priority first, then run_at, then id."""
        return (-self.priority, self.run_at, self.job_id)


@dataclass(frozen=True)
class StartedJob:
    job_id: int
    fence: int
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


def insert_job(conn: Connection, new: NewJob) -> tuple[int, bool]:
    """Insert a PENDING job: (job id, True), or (existing id, False) for a known dedupe key."""
    values = {
        "workspace_id": new.workspace_id,
        "kind": new.kind,
        "payload": new.payload,
        "status": JobStatus.PENDING.value,
        "priority": new.priority,
        "run_at": new.run_at,
        "max_attempts": new.max_attempts,
        "dedupe_key": new.dedupe_key,
        "created_at": new.created_at,
    }
    stmt = insert_ignoring_conflicts(conn, job).values(values).returning(job.c.id)
    inserted = conn.execute(stmt).scalar_one_or_none()
    if inserted is not None:
        return int(inserted), True
    existing = (
        find_by_dedupe_key(conn, new.workspace_id, new.dedupe_key) if new.dedupe_key else None
    )
    if existing is None:  # only the dedupe key can conflict; anything else is a bug
        raise RuntimeError(f"insert of a job for {new.workspace_id!r} conflicted unexpectedly")
    return existing, False


def find_by_dedupe_key(conn: Connection, workspace_id: str, dedupe_key: str) -> int | None:
    found = conn.execute(
        select(job.c.id).where(job.c.workspace_id == workspace_id, job.c.dedupe_key == dedupe_key)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _due(now: datetime) -> Any:
    return and_(job.c.status == JobStatus.PENDING.value, job.c.run_at <= now)


def claim_oldest_due(conn: Connection, now: datetime, limit: int) -> list[Claim]:
    """Claim up to ``limit`` due jobs, oldest first: PENDING -> CLAIMED, fence + 1."""
    candidates = select(job.c.id).where(_due(now)).order_by(job.c.run_at, job.c.id).limit(limit)
    return claim_ids(conn, candidates, now)


CLAIM_COLUMNS = (
    job.c.id,
    job.c.fence,
    job.c.workspace_id,
    job.c.kind,
    job.c.priority,
    job.c.run_at,
)


def claim_from(row: Any) -> Claim:
    return Claim(row.id, row.fence, row.workspace_id, row.kind, row.priority, row.run_at)


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
    """Give back a claim whose message was never sent: CLAIMED -> PENDING."""
    result = conn.execute(
        update(job)
        .where(
            job.c.id == claim.job_id,
            job.c.fence == claim.fence,
            job.c.status == JobStatus.CLAIMED.value,
        )
        .values(status=JobStatus.PENDING.value, claimed_at=None)
    )
    return result.rowcount == 1


def start(
    conn: Connection, job_id: int, fence: int, now: datetime, worker: str
) -> StartedJob | None:
    """CLAIMED -> RUNNING for exactly this claim; None when the message is stale or repeated."""
    row = conn.execute(
        update(job)
        .where(job.c.id == job_id, job.c.fence == fence, job.c.status == JobStatus.CLAIMED.value)
        .values(
            status=JobStatus.RUNNING.value,
            attempts=job.c.attempts + 1,
            started_at=now,
            locked_at=now,
            locked_by=worker,
        )
        .returning(
            job.c.workspace_id, job.c.kind, job.c.payload, job.c.attempts, job.c.max_attempts
        )
    ).one_or_none()
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
        duplicate_event.insert().values(
            workspace_id=row.workspace_id,
            job_id=job_id,
            fence=fence,
            reason=reason,
            detail=f"job fence {row.fence}, status {row.status}",
            created_at=now,
        )
    )
    return reason


def _finish(conn: Connection, job_id: int, fence: int, **values: Any) -> bool:
    result = conn.execute(
        update(job)
        .where(job.c.id == job_id, job.c.fence == fence, job.c.status == JobStatus.RUNNING.value)
        .values(locked_at=None, locked_by=None, **values)
    )
    return result.rowcount == 1


def succeed(conn: Connection, job_id: int, fence: int, now: datetime) -> bool:
    return _finish(conn, job_id, fence, status=JobStatus.SUCCEEDED.value, finished_at=now)


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
    result = conn.execute(
        update(job)
        .where(job.c.id == job_id, job.c.fence == fence, job.c.status == JobStatus.RUNNING.value)
        .values(locked_at=now)
    )
    return result.rowcount == 1


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
    value: datetime | None = conn.execute(select(func.min(job.c.run_at)).where(_due(now))).scalar()
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
