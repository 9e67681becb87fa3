"""What the gate reads from SQL for one window, per workspace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.scheduling.tick import RunReport
from fairbeat.store.health import due_since
from fairbeat.store.jobs import job
from fairbeat.store.models import duplicate_event_table, function_run_table
from fairbeat.store.poison import readable

# A job running longer than this across the window's start is left out of the
# peak in-flight count (it keeps the query on the started_at index).
LONGEST_COUNTED_RUN = timedelta(hours=1)


@dataclass
class RawWindow:
    waits_s: list[float] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)  # running, in seconds
    succeeded: int = 0
    failed: int = 0
    # duplicate_event rows in the window by reason; what each means is scheduling.gate's call.
    duplicates_by_reason: dict[str, int] = field(default_factory=dict)


def window_rows(
    conn: Connection, start: datetime, end: datetime, workspace_ids: Sequence[str]
) -> dict[str, RawWindow]:
    ids = list(workspace_ids)
    out: dict[str, RawWindow] = defaultdict(RawWindow)
    if not ids:
        return {}
    running = conn.execute(
        select(
            job.c.workspace_id, job.c.started_at, job.c.run_at, job.c.created_at, job.c.finished_at
        ).where(
            job.c.workspace_id.in_(ids),
            readable(conn, job.c.run_at),
            readable(conn, job.c.created_at),
            job.c.started_at >= start - LONGEST_COUNTED_RUN,
            job.c.started_at < end,
            or_(job.c.finished_at.is_(None), job.c.finished_at >= start),
        )
    ).all()
    for r in running:
        raw = out[r.workspace_id]
        if r.started_at >= start:
            waited = r.started_at - due_since(r.run_at, r.created_at)
            raw.waits_s.append(max(0.0, waited.total_seconds()))
        finish = min(r.finished_at or end, end)
        raw.intervals.append((r.started_at.timestamp(), finish.timestamp()))
    finished = conn.execute(
        select(job.c.workspace_id, job.c.status, func.count())
        .where(job.c.workspace_id.in_(ids), job.c.finished_at >= start, job.c.finished_at < end)
        .group_by(job.c.workspace_id, job.c.status)
    ).all()
    for workspace, status, n in finished:
        if status == JobStatus.SUCCEEDED.value:
            out[workspace].succeeded += int(n)
        elif status == JobStatus.FAILED.value:
            out[workspace].failed += int(n)
    dup = duplicate_event_table
    for workspace, reason, n in conn.execute(
        select(dup.c.workspace_id, dup.c.reason, func.count())
        .where(dup.c.workspace_id.in_(ids), dup.c.created_at >= start, dup.c.created_at < end)
        .group_by(dup.c.workspace_id, dup.c.reason)
    ).all():
        out[workspace].duplicates_by_reason[reason] = int(n)
    return dict(out)


def contention(conn: Connection, start: datetime, end: datetime) -> float | None:
    """Lost claims per planned claim over the dispatch runs finished in the window."""
    run = function_run_table
    reports = conn.execute(
        select(run.c.report).where(
            run.c.function == "dispatch", run.c.finished_at >= start, run.c.finished_at < end
        )
    ).scalars()
    claimed = lost = 0
    for raw in reports:
        report = RunReport.from_dict(raw or {})
        claimed += report.claimed
        lost += report.lost_claims
    return lost / (claimed + lost) if claimed + lost else None
