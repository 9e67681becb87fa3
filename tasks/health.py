"""The health snapshot: what `fairbeat status`, maintenance and the exporter report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fairbeat.scheduling.gate import classify_duplicates
from fairbeat.scheduling.health import figures
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import health, job_queries
from fairbeat.store import workspaces as workspace_rows
from fairbeat.tasks.runtime import Runtime


def snapshot(rt: Runtime, now: datetime) -> dict[str, Any]:
    settings = rt.settings
    window = settings.health_window_s
    with rt.engine.connect() as conn:
        by_status = {s.value: 0 for s in JobStatus} | job_queries.count_by_status(conn)
        workspaces = job_queries.count_by_workspace(conn)
        counted = health.counts(conn, now, window, settings.stale_after_s)
        observed = health.observations(conn, now, window)
        misconfigured = workspace_rows.misconfigured(conn)
    fig = figures(observed, settings.top_workspaces)
    duplicates = classify_duplicates(counted.duplicates)
    oldest = counted.oldest_due_at
    return {
        "at": now.isoformat(),
        "window_s": window,
        "by_status": by_status,
        "workspaces": workspaces,
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
