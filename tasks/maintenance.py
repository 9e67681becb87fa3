"""``fairbeat.maintenance``: keep the queue live, and say how it is doing.

Every minute (beat): dead-letter rows no loop can load (store/poison.py),
mark silent runs STALE, return silent RUNNING jobs to PENDING (or FAILED on
their last attempt), send claims no worker started again, store a health
snapshot, fire or resolve alerts, and prune finished rows past their
retention in bounded batches. One run per interval (the function_run window
key); each step's counts go in its report, and a step that fails is
reported without stopping the steps after it.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, Task, shared_task
from redis import RedisError

from fairbeat.scheduling.alerts import (
    QUEUE_AGE_BREACH,
    STALE_RUN,
    AlertAction,
    Condition,
    alert_actions,
)
from fairbeat.scheduling.recovery import REQUEUED_UNDELIVERED, recover_running
from fairbeat.scheduling.retention import TABLES, cutoffs
from fairbeat.store import alerts, families, health, recovery, retention, runs
from fairbeat.tasks import cancellation, ledger, limits, quarantine
from fairbeat.tasks.alerting import sink_for
from fairbeat.tasks.health import snapshot
from fairbeat.tasks.redact import mask_urls
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.maintenance")


def recover_jobs(rt: Runtime, now: datetime, app: Celery | None = None) -> dict[str, int]:
    settings = rt.settings
    silent_before = now - timedelta(seconds=settings.stale_after_s)
    counts: dict[str, int] = {}
    with rt.engine.connect() as conn:
        silent = recovery.silent_running(conn, silent_before)
    for job in silent:
        decision = recover_running(attempts=job.attempts, max_attempts=job.max_attempts)
        error = (
            f"{decision.reason_code}: no heartbeat from {job.locked_by} "
            f"for {settings.stale_after_s:g} s (worker lost)"
        )
        limit_s = limits.ran_to_its_limit(app, job) if app is not None else None
        if limit_s is not None:
            error = limits.recovered_error(limit_s, decision.reason_code)
        with rt.engine.begin() as conn:  # a FAILED job ends its dependents with it
            moved = recovery.recover(conn, job, decision.to_status, silent_before, now, error)
            if moved:
                families.settle(
                    conn, job.job_id, decision.to_status, settings.dependency_failure, now
                )
        if moved:
            counts[decision.reason_code] = counts.get(decision.reason_code, 0) + 1
            log.warning(
                "recovered job %s",
                job.job_id,
                extra={
                    "action": "maintenance.recovered",
                    "job_id": job.job_id,
                    "workspace_id": job.workspace_id,
                    "reason_code": decision.reason_code,
                },
            )
    claimed_before = now - timedelta(seconds=settings.delivery_timeout_s)
    with rt.engine.begin() as conn:
        requeued = recovery.requeue_undelivered(conn, claimed_before)
    if requeued:
        counts[REQUEUED_UNDELIVERED] = len(requeued)
        log.warning(
            "requeued %d undelivered claims",
            len(requeued),
            extra={"action": "maintenance.requeued", "job_ids": requeued[:50]},
        )
    return counts


def mark_stale_runs(rt: Runtime, now: datetime) -> list[dict[str, Any]]:
    before = now - timedelta(seconds=rt.settings.stale_after_s)
    with rt.engine.begin() as conn:
        stale = runs.mark_stale(conn, before, now)
    for run in stale:
        log.error(
            "run %s of %s went stale",
            run["id"],
            run["function"],
            extra={
                "action": "maintenance.stale_run",
                "run_id": run["id"],
                "function": run["function"],
                "fence": run["fence"],
            },
        )
    return stale


def evaluate_alerts(
    rt: Runtime, now: datetime, health_now: dict[str, Any], stale: int
) -> list[str]:
    limit = rt.settings.queue_age_alert_s
    p95 = health_now["queue_age_p95_s"]
    conditions = [
        Condition(STALE_RUN, stale > 0, {"stale_runs": stale}),
        Condition(
            QUEUE_AGE_BREACH,
            p95 is not None and p95 > limit,
            {"queue_age_p95_s": p95, "limit_s": limit},
        ),
    ]
    with rt.engine.connect() as conn:
        open_kinds = alerts.open_kinds(conn)
    sink = sink_for(rt.settings.slack_webhook_url)
    done = []
    for action in alert_actions(conditions, open_kinds):
        episode = _record(rt, action, now)
        if episode is None:
            continue  # another maintenance run got there first
        error = sink.send(action, episode)
        done.append(
            f"{action.action} {action.kind}" + (f" (delivery failed: {error})" if error else "")
        )
    return done


def _record(rt: Runtime, action: AlertAction, now: datetime) -> str | None:
    with rt.engine.begin() as conn:
        if action.action == "FIRE":
            return alerts.open_episode(conn, action.kind, now, dict(action.evidence))
        return alerts.close_episode(conn, action.kind, now)


def _publish_signals(rt: Runtime, figures: dict[str, Any]) -> None:
    """Hand the autoscaler its guardrail signals; without Redis it holds capacity fixed."""
    try:
        rt.control.save_health_signals(
            {"failure_rate": figures["failure_rate"], "queue_age_p95_s": figures["queue_age_p95_s"]}
        )
    except RedisError:
        log.warning("health signals not published", extra={"action": "maintenance.no_redis"})


def _health(rt: Runtime, now: datetime, report: dict[str, Any]) -> None:
    figures = snapshot(rt, now)
    with rt.engine.begin() as conn:
        health.save_snapshot(conn, now, figures)
    report["health"] = {k: figures[k] for k in HEALTH_IN_REPORT}
    _publish_signals(rt, figures)
    stale = len(report.get("stale_runs_marked", ()))
    report["alerts"] = evaluate_alerts(rt, now, figures, stale)


def _steps(
    rt: Runtime, now: datetime, report: dict[str, Any], app: Celery
) -> list[tuple[str, Any]]:
    def quarantined() -> None:
        with rt.engine.begin() as conn:
            report["quarantined"] = quarantine.sweep(conn, now, thorough=True)

    def stale_runs() -> None:
        stale = mark_stale_runs(rt, now)
        report["stale_runs_marked"] = [{"id": r["id"], "function": r["function"]} for r in stale]

    def recovered() -> None:
        report["recovered"] = recover_jobs(rt, now, app)

    def cancels() -> None:
        report["cancels_terminated"] = cancellation.terminate_overdue(app, now)

    def pruned() -> None:
        report["pruned"] = prune(rt, now)["deleted"]

    return [
        ("quarantine", quarantined),
        ("stale_runs", stale_runs),
        ("recover", recovered),
        ("cancel", cancels),
        ("health", lambda: _health(rt, now, report)),
        ("prune", pruned),
    ]


def run_maintenance(app: Celery, window_key: str | None = None) -> dict[str, Any]:
    """One maintenance run. A step that fails is logged and reported, and the
    steps after it still run: recovery must not wait on a health query."""
    rt = runtime_of(app)
    started = time.monotonic()
    now = rt.now()
    key = window_key or f"m:{math.floor(now.timestamp() / rt.settings.maintenance_interval_s)}"
    with ledger.entry(rt, "maintenance", key, now) as run:
        if run is None:
            return {"skipped": "WINDOW_ALREADY_RAN"}
        try:
            run.failed = _maintain(rt, now, run.report, app)
        finally:
            run.report["duration_s"] = round(time.monotonic() - started, 4)
            log.info("maintenance", extra={"action": "maintenance.run", **run.report})
        return run.report


def _maintain(rt: Runtime, now: datetime, report: dict[str, Any], app: Celery) -> bool:
    """Run every step; one that fails is logged and reported under ``failed_steps``
    and the steps after it still run. True when any failed."""
    failed: dict[str, str] = {}
    for name, step in _steps(rt, now, report, app):
        try:
            step()
        except Exception as exc:
            failed[name] = mask_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])[:400]
            log.exception(
                "maintenance step %s failed",
                name,
                extra={"action": "maintenance.step_failed", "step": name},
            )
    if failed:
        report["failed_steps"] = failed
    return bool(failed)


def prune(
    rt: Runtime, now: datetime, older_than_s: float | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Delete finished rows past their retention (or ``older_than_s``), oldest first.

    Each batch is its own short transaction of at most FAIRBEAT_PRUNE_BATCH_SIZE
    rows, and each table gets at most FAIRBEAT_PRUNE_MAX_BATCHES batches; a
    table cut short is listed under ``more`` and goes on at the next run.
    ``dry_run`` counts what would go and deletes nothing.
    """
    plan = cutoffs(rt.settings.retention, now, older_than_s)
    size, most = rt.settings.prune_batch_size, rt.settings.prune_max_batches
    deleted: dict[str, int] = {}
    more: list[str] = []
    for name in TABLES:
        before = plan.before[name]
        if dry_run:
            with rt.engine.connect() as conn:
                deleted[name] = retention.count_prunable(conn, name, before)
            continue
        deleted[name] = 0
        for _ in range(most):
            with rt.engine.begin() as conn:
                n = retention.prune_batch(conn, name, before, size)
            deleted[name] += n
            if n < size:
                break
        else:
            more.append(name)
    return {
        "reason_code": plan.reason_code,
        "dry_run": dry_run,
        "cutoffs": {name: at.isoformat() for name, at in plan.before.items()},
        ("would_delete" if dry_run else "deleted"): deleted,
        "more": more,
        **plan.evidence,
    }


HEALTH_IN_REPORT = (
    "due_pending",
    "oldest_due_age_s",
    "queue_age_p95_s",
    "running",
    "stale_locks",
    "failure_rate",
    "duplicate_signal",
    "top_workspace_share",
)


@shared_task(name="fairbeat.maintenance", bind=True)
def maintenance(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    return run_maintenance(self.app)
