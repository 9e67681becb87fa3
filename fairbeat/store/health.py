"""What the health snapshot reads from SQL, bounded for large tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from fairbeat.scheduling.health import Observations
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.jobs import due, job
from fairbeat.store.models import duplicate_event_table, health_snapshot_table
from fairbeat.store.runs import count_silent

# The oldest due jobs still waiting count toward the queue-age p95 too (a
# stalled queue must show at once), up to this many.
WAITING_SAMPLE = 10_000


@dataclass(frozen=True)
class Counts:
    due_pending: int
    oldest_due_run_at: datetime | None
    running: int
    stale_locks: int  # RUNNING jobs with no heartbeat since the cutoff
    stale_runs: int  # RUNNING dispatch/gate/maintenance runs silent since the cutoff
    duplicates: dict[str, int]  # duplicate-signal events in the window, by reason


def counts(conn: Connection, now: datetime, window_s: float, stale_after_s: float) -> Counts:
    cutoff = now - timedelta(seconds=stale_after_s)
    due_now = due(now)
    running = job.c.status == JobStatus.RUNNING.value
    dup = duplicate_event_table
    duplicates = conn.execute(
        select(dup.c.reason, func.count())
        .where(dup.c.created_at >= now - timedelta(seconds=window_s))
        .group_by(dup.c.reason)
    ).all()
    return Counts(
        due_pending=int(conn.execute(select(func.count()).where(due_now)).scalar_one()),
        oldest_due_run_at=conn.execute(select(func.min(job.c.run_at)).where(due_now)).scalar(),
        running=int(conn.execute(select(func.count()).where(running)).scalar_one()),
        stale_locks=int(
            conn.execute(select(func.count()).where(running, job.c.locked_at < cutoff)).scalar_one()
        ),
        stale_runs=count_silent(conn, cutoff),
        duplicates={reason: int(n) for reason, n in duplicates},
    )


def observations(conn: Connection, now: datetime, window_s: float) -> Observations:
    since = now - timedelta(seconds=window_s)
    started = conn.execute(
        select(job.c.workspace_id, job.c.started_at, job.c.run_at).where(job.c.started_at >= since)
    ).all()
    waiting = conn.execute(
        select(job.c.workspace_id, job.c.run_at)
        .where(due(now))
        .order_by(job.c.run_at)
        .limit(WAITING_SAMPLE)
    ).all()
    finished = conn.execute(
        select(job.c.status, func.count()).where(job.c.finished_at >= since).group_by(job.c.status)
    ).all()
    by_status = {status: int(n) for status, n in finished}
    waits = [(r.workspace_id, max(0.0, (r.started_at - r.run_at).total_seconds())) for r in started]
    waits += [(r.workspace_id, max(0.0, (now - r.run_at).total_seconds())) for r in waiting]
    return Observations(
        queue_waits_s=waits,
        starts_by_workspace=Counter(r.workspace_id for r in started),
        finished=sum(by_status.values()),
        failed=by_status.get(JobStatus.FAILED.value, 0),
    )


def save_snapshot(conn: Connection, now: datetime, data: dict[str, object]) -> None:
    conn.execute(health_snapshot_table.insert().values(taken_at=now, data=data))
