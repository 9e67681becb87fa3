"""What the canary reads from SQL about its own workspaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from fairbeat.store.effects import EFFECT_RACED
from fairbeat.store.jobs import job
from fairbeat.store.models import duplicate_event_table, function_run_table
from fairbeat.store.runs import STALE


@dataclass(frozen=True)
class StatusCount:
    """Jobs of one workspace in one status, and the earliest run_at among them."""

    workspace_id: str
    status: str
    jobs: int
    first_run_at: datetime | None


@dataclass(frozen=True)
class JobTimes:
    workspace_id: str
    status: str
    run_at: datetime
    started_at: datetime | None


@dataclass(frozen=True)
class CanaryRows:
    jobs: list[JobTimes]
    effect_races: int  # once() effects that ran in two workers of these workspaces
    stale_runs: int  # runs started since the canary began that were declared stale


def status_counts(conn: Connection, workspaces: Sequence[str]) -> list[StatusCount]:
    rows = conn.execute(
        select(job.c.workspace_id, job.c.status, func.count(), func.min(job.c.run_at))
        .where(job.c.workspace_id.in_(workspaces))
        .group_by(job.c.workspace_id, job.c.status)
    )
    return [StatusCount(w, status, int(n), first) for w, status, n, first in rows]


def measured(conn: Connection, workspaces: Sequence[str], since: datetime) -> CanaryRows:
    """Every job of ``workspaces`` with its times, and the races and stale runs since ``since``."""
    rows = conn.execute(
        select(job.c.workspace_id, job.c.status, job.c.run_at, job.c.started_at).where(
            job.c.workspace_id.in_(workspaces)
        )
    )
    jobs = [JobTimes(r.workspace_id, r.status, r.run_at, r.started_at) for r in rows]
    dup = duplicate_event_table
    raced = conn.execute(
        select(func.count()).where(dup.c.workspace_id.in_(workspaces), dup.c.reason == EFFECT_RACED)
    ).scalar_one()
    run = function_run_table
    stale = conn.execute(
        select(func.count()).where(run.c.status == STALE, run.c.started_at >= since)
    ).scalar_one()
    return CanaryRows(jobs=jobs, effect_races=int(raced), stale_runs=int(stale))
