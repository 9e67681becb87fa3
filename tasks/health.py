"""The health snapshot: what maintenance and the exporter report, and the
bounded view `fairbeat status` shows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from fairbeat.scheduling.gate import classify_duplicates
from fairbeat.scheduling.health import figures
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import health, job_queries, overview
from fairbeat.store import workspaces as workspace_rows
from fairbeat.tasks.runtime import Runtime


def snapshot(rt: Runtime, now: datetime) -> dict[str, Any]:
    with rt.engine.connect() as conn:
        by_status = {s.value: 0 for s in JobStatus} | job_queries.count_by_status(conn)
        workspaces = job_queries.count_by_workspace(conn)
        figured = _figures(rt, conn, now, by_status)
    return {"at": now.isoformat(), "by_status": by_status, "workspaces": workspaces, **figured}


def status_report(rt: Runtime, now: datetime, top_n: int) -> dict[str, Any]:
    """The snapshot's figures, with jobs counted for the active workspaces only:
    every live job, and the jobs finished within the health window."""
    since = now - timedelta(seconds=rt.settings.health_window_s)
    with rt.engine.connect() as conn:
        active = overview.active_workspaces(conn, since, top_n)
        figured = _figures(rt, conn, now, active.totals)
    return {
        "at": now.isoformat(),
        "finished_since": since.isoformat(),
        "by_status": active.totals,
        "workspaces": {w.workspace_id: w.counts for w in active.top},
        "other_workspaces": {"count": active.others, "by_status": active.others_counts},
        **figured,
    }


def _figures(
    rt: Runtime, conn: Connection, now: datetime, by_status: dict[str, int]
) -> dict[str, Any]:
    settings = rt.settings
    window = settings.health_window_s
    counted = health.counts(conn, now, window, settings.stale_after_s)
    fig = figures(health.observations(conn, now, window), settings.top_workspaces)
    misconfigured = workspace_rows.misconfigured(conn)
    duplicates = classify_duplicates(counted.duplicates)
    oldest = counted.oldest_due_at
    return {
        "window_s": window,
        "due_pending": counted.due_pending,
        "oldest_due_age_s": round((now - oldest).total_seconds(), 3) if oldest else None,
        "queue_age_p95_s": fig.queue_age_p95_s,
        "queue_age_p95_s_by_workspace": fig.queue_age_p95_by_workspace,
        "running": counted.running,
        "in_flight": by_status[JobStatus.CLAIMED.value] + by_status[JobStatus.RUNNING.value],
        "stale_runs": counted.stale_runs,
        "stale_locks": counted.stale_locks,
        "failure_rate": fig.failure_rate,
        # Customer-visible duplicate sends only; the system's own catches beside it.
        "duplicate_signal": duplicates.duplicate_sends,
        "suppressed_effects": duplicates.suppressed_effects,
        "dropped_deliveries": duplicates.dropped_deliveries,
        "duplicates_by_reason": counted.duplicates,
        "top_workspace": fig.top_workspace,
        "top_workspace_share": fig.top_workspace_share,
        # Held as WORKSPACE_MISCONFIGURED: workspace -> setting -> what is wrong with it.
        "misconfigured_workspaces": misconfigured,
    }
