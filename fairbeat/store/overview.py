"""What ``fairbeat status`` reads: bounded by indexes, so
their cost follows the live backlog and the health window, never the number
of jobs that ever finished."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.models import job_table as job

LIVE = (
    JobStatus.WAITING.value,
    JobStatus.PENDING.value,
    JobStatus.CLAIMED.value,
    JobStatus.RUNNING.value,
)
FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
STATUSES = (*LIVE, *FINISHED)


@dataclass(frozen=True)
class WorkspaceCounts:
    """Live jobs (every one) and jobs finished since the window's start, by status."""

    workspace_id: str
    counts: dict[str, int]

    @property
    def backlog(self) -> int:
        return sum(self.counts.get(s, 0) for s in LIVE)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINISHED)


@dataclass(frozen=True)
class Overview:
    since: datetime
    top: list[WorkspaceCounts]  # the busiest: most live jobs, then most finished
    others: int  # how many more workspaces are active
    others_counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


def _zero() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def _per_workspace(conn: Connection, since: datetime) -> dict[str, dict[str, int]]:
    # Live jobs through the (status, workspace_id, ...) index; finished ones
    # through the finished_at index, from the window's start only.
    live = conn.execute(
        select(job.c.workspace_id, job.c.status, func.count())
        .where(job.c.status.in_(LIVE))
        .group_by(job.c.workspace_id, job.c.status)
    ).all()
    finished = conn.execute(
        select(job.c.workspace_id, job.c.status, func.count())
        .where(job.c.finished_at >= since, job.c.status.in_(FINISHED))
        .group_by(job.c.workspace_id, job.c.status)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for workspace_id, status, n in [*live, *finished]:
        out.setdefault(workspace_id, _zero())[status] += int(n)
    return out


def active_workspaces(conn: Connection, since: datetime, top_n: int) -> Overview:
    """The ``top_n`` workspaces with the most live jobs (ties: most finished since
    ``since``, then by id), and the rest of the active ones summed."""
    counted = [WorkspaceCounts(w, c) for w, c in _per_workspace(conn, since).items()]
    counted.sort(key=lambda w: (-w.backlog, -w.finished, w.workspace_id))
    top, rest = counted[:top_n], counted[top_n:]
    others, totals = _zero(), _zero()
    for ws in rest:
        for status, n in ws.counts.items():
            others[status] += n
    for ws in counted:
        for status, n in ws.counts.items():
            totals[status] += n
    return Overview(since=since, top=top, others=len(rest), others_counts=others, totals=totals)
