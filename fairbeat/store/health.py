"""What the health snapshot reads from SQL, bounded for large tables.

Queue age is measured from when a job became due: ``max(run_at, created_at)``.
A ``run_at`` in the past means "due now", never "waiting since then" (a job
enqueued with a run_at in the year 2000 is not 26 years old). Rows whose
times cannot be loaded are left out (store/poison.py); maintenance
dead-letters them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, type_coerce
from sqlalchemy.engine import Connection

from fairbeat.scheduling.health import Observations
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.db import is_postgres
from fairbeat.store.jobs import due, job
from fairbeat.store.models import UTCDateTime, duplicate_event_table, health_snapshot_table
from fairbeat.store.poison import readable
from fairbeat.store.runs import count_silent

# The oldest due jobs still waiting count toward the queue-age p95 too (a
# stalled queue must show at once), up to this many.
WAITING_SAMPLE = 10_000


@dataclass(frozen=True)
class Counts:
    due_pending: int
    oldest_due_at: datetime | None  # when the longest-waiting due job became due
    running: int
    stale_locks: int  # RUNNING jobs with no heartbeat since the cutoff
    stale_runs: int  # RUNNING dispatch/gate/maintenance runs silent since the cutoff
    duplicates: dict[str, int]  # duplicate-signal events in the window, by reason


def counts(conn: Connection, now: datetime, window_s: float, stale_after_s: float) -> Counts:
    cutoff = now - timedelta(seconds=stale_after_s)
    due_now = due(now)
    loadable = readable(conn, job.c.run_at) & readable(conn, job.c.created_at)
    running = job.c.status == JobStatus.RUNNING.value
    dup = duplicate_event_table
    duplicates = conn.execute(
        select(dup.c.reason, func.count())
        .where(dup.c.created_at >= now - timedelta(seconds=window_s))
        .group_by(dup.c.reason)
    ).all()
    return Counts(
        due_pending=int(conn.execute(select(func.count()).where(due_now)).scalar_one()),
        oldest_due_at=oldest_due_at(conn, due_now & loadable),
        running=int(conn.execute(select(func.count()).where(running)).scalar_one()),
        stale_locks=int(
            conn.execute(select(func.count()).where(running, job.c.locked_at < cutoff)).scalar_one()
        ),
        stale_runs=count_silent(conn, cutoff),
        duplicates={reason: int(n) for reason, n in duplicates},
    )


def due_since(run_at: datetime, created_at: datetime) -> datetime:
    """When a job became due: a run_at before its enqueue means "due on enqueue"."""
    return max(run_at, created_at)


def oldest_due_at(conn: Connection, where: Any) -> datetime | None:
    """The earliest moment a job matching ``where`` became due."""
    later = func.greatest if is_postgres(conn) else func.max  # SQLite's max(a, b) is scalar
    due_at = type_coerce(later(job.c.run_at, job.c.created_at), UTCDateTime())
    value: datetime | None = conn.execute(select(func.min(due_at)).where(where)).scalar()
    return value


def observations(conn: Connection, now: datetime, window_s: float) -> Observations:
    since = now - timedelta(seconds=window_s)
    loadable = readable(conn, job.c.run_at) & readable(conn, job.c.created_at)
    started = conn.execute(
        select(job.c.workspace_id, job.c.started_at, job.c.run_at, job.c.created_at).where(
            job.c.started_at >= since, loadable
        )
    ).all()
    waiting = conn.execute(
        select(job.c.workspace_id, job.c.run_at, job.c.created_at)
        .where(due(now), loadable)
        .order_by(job.c.run_at)
        .limit(WAITING_SAMPLE)
    ).all()
    finished = conn.execute(
        select(job.c.status, func.count()).where(job.c.finished_at >= since).group_by(job.c.status)
    ).all()
    by_status = {status: int(n) for status, n in finished}
    waits = [(r.workspace_id, _wait(r.started_at, r)) for r in started]
    waits += [(r.workspace_id, _wait(now, r)) for r in waiting]
    return Observations(
        queue_waits_s=waits,
        starts_by_workspace=Counter(r.workspace_id for r in started),
        finished=sum(by_status.values()),
        failed=by_status.get(JobStatus.FAILED.value, 0),
    )


def _wait(until: datetime, row: Any) -> float:
    return max(0.0, (until - due_since(row.run_at, row.created_at)).total_seconds())


def save_snapshot(conn: Connection, now: datetime, data: dict[str, object]) -> None:
    conn.execute(health_snapshot_table.insert().values(taken_at=now, data=data))
