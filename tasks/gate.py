"""``fairbeat.gate``: evaluate a window and move workspaces on the quota ladder.

Beat fires it on the quarter hour for the window that just ended. Metrics
come from the job table, verdicts from scheduling.gate, and the result is
written in one step: the decisions in SQL, inside a transaction that commits
only if the atomic Redis write (ladder + gate state + window marker, compared
on the window) went through. Redis unreachable means a loud failure and
nothing written; a window evaluated before changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery, Task, shared_task
from redis import RedisError

from fairbeat.scheduling.gate import (
    ALREADY_EVALUATED,
    BASE_RUNG,
    WINDOW_IN_FUTURE,
    WINDOW_NOT_ALIGNED,
    WINDOW_NOT_FINISHED,
    GatePolicy,
    GateVerdict,
    WindowMetrics,
    check_window,
    classify_duplicates,
    decide_gate,
)
from fairbeat.scheduling.quota import tier_base
from fairbeat.scheduling.stats import peak_concurrency, percentile
from fairbeat.store import gate_decisions, gate_metrics, selection, workspaces
from fairbeat.tasks import ledger
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.gate")


class GateUnavailable(RuntimeError):
    """The gate cannot read or write the ladder (Redis); nothing was written."""


class WindowRefused(ValueError):
    """The window asked for cannot be evaluated now; nothing was written."""

    def __init__(self, window: str, reason_code: str, latest: str) -> None:
        why = {
            WINDOW_IN_FUTURE: "it starts in the future",
            WINDOW_NOT_FINISHED: "it has not finished yet",
            WINDOW_NOT_ALIGNED: "it does not start on a multiple of FAIRBEAT_GATE_WINDOW_S",
        }[reason_code]
        super().__init__(
            f"window {window}: {reason_code}: {why}; give a finished, aligned window "
            f"(the latest is {latest})"
        )
        self.reason_code = reason_code


def checked_start(rt: Runtime, start: datetime, now: datetime) -> datetime:
    """``start`` in UTC, if it names a window the gate may evaluate at ``now``."""
    window_s = rt.settings.gate_window_s
    check = check_window(start_s=start.timestamp(), window_s=window_s, now_s=now.timestamp())
    if not check.ok:
        latest = last_window_start(now, window_s).isoformat()
        raise WindowRefused(start.isoformat(), check.reason_code, latest)
    return start.astimezone(UTC)


def policy_of(rt: Runtime) -> GatePolicy:
    s = rt.settings
    return GatePolicy(
        ladder=tuple(s.quota_ladder),
        queue_age_p95_limit_s=s.queue_age_alert_s,
        failure_rate_limit=s.error_rate_limit,
        contention_limit=s.contention_limit,
    )


def last_window_start(now: datetime, window_s: int) -> datetime:
    """The start of the window that ended most recently."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s - window_s, UTC)


def _metrics(raw: gate_metrics.RawWindow | None, contention: float | None) -> WindowMetrics:
    if raw is None:
        return WindowMetrics(0, None, None, contention, 0, 0)
    finished = raw.succeeded + raw.failed
    counted = classify_duplicates(raw.duplicates_by_reason)
    return WindowMetrics(
        jobs=len(raw.waits_s) + finished,
        queue_age_p95_s=percentile(raw.waits_s, 0.95),
        failure_rate=raw.failed / finished if finished else None,
        contention=contention,
        duplicates=counted.duplicate_sends,
        peak_in_flight=peak_concurrency(raw.intervals),
        suppressed_effects=counted.suppressed_effects,
        dropped_deliveries=counted.dropped_deliveries,
    )


def _candidates(rt: Runtime) -> list[str]:
    """High-quota workspaces, and any still on the ladder (to take them off)."""
    with rt.engine.connect() as conn:
        enabled = workspaces.high_quota_ids(conn)
    return sorted(set(enabled) | set(rt.control.ladder_workspaces()))


def verdicts(rt: Runtime, start: datetime) -> list[GateVerdict]:
    end = start + timedelta(seconds=rt.settings.gate_window_s)
    window = start.isoformat()
    policy = policy_of(rt)
    try:
        ids = _candidates(rt)
        states = rt.control.gate_states(ids)
        promotion = rt.settings.promotion_enabled and rt.control.promotion_enabled()
    except RedisError as exc:
        raise GateUnavailable(f"the quota ladder in Redis is unreachable: {exc}") from exc
    with rt.engine.connect() as conn:
        raw = gate_metrics.window_rows(conn, start, end, ids)
        contention = gate_metrics.contention(conn, start, end)
        profiles = selection.profiles(conn, ids)
    return [
        decide_gate(
            workspace_id=w,
            window=window,
            high_quota_enabled=profiles[w].high_quota_enabled,
            promotion_enabled=promotion,
            base_quota=tier_base(profiles[w].tier, rt.settings.tier_quotas),
            metrics=_metrics(raw.get(w), contention),
            state=states[w],
            policy=policy,
        )
        for w in ids
    ]


class _AlreadyWritten(Exception):
    pass


def _write(rt: Runtime, window: str, results: list[GateVerdict]) -> bool:
    policy = policy_of(rt)
    entries = {
        v.workspace_id: (None if v.state.rung <= BASE_RUNG else v.to_quota, v.state)
        for v in results
    }
    now = rt.now()
    try:
        with rt.engine.begin() as conn:
            for v in results:
                gate_decisions.record(
                    conn,
                    gate_decisions.GateDecision(
                        window=window,
                        workspace_id=v.workspace_id,
                        from_quota=v.from_quota,
                        to_quota=v.to_quota,
                        reason_code=v.reason_code,
                        evidence={
                            **v.evidence,
                            "state": asdict(v.state),
                            "ladder": list(policy.ladder),
                        },
                        decided_at=now,
                    ),
                )
            if not rt.control.write_ladder(window, entries):
                raise _AlreadyWritten  # roll the SQL back: the first run's rows stand
    except _AlreadyWritten:
        return False
    except RedisError as exc:
        raise GateUnavailable(f"could not write the quota ladder: {exc}") from exc
    return True


def run_gate(
    app: Celery, window_start: datetime | None = None, manual: bool = False
) -> dict[str, Any]:
    rt = runtime_of(app)
    now = rt.now()
    if window_start is None:
        start = last_window_start(now, rt.settings.gate_window_s)
    else:
        start = checked_start(rt, window_start, now)
    window = start.isoformat()
    key = f"manual:{window}:{now.isoformat()}" if manual else window
    with ledger.entry(rt, "gate", key, now) as run:
        if run is None:
            return {"window": window, "skipped": "WINDOW_ALREADY_RAN"}
        report = run.report
        report["window"] = window
        try:
            results = verdicts(rt, start)
            fresh = [v for v in results if v.reason_code != ALREADY_EVALUATED]
            written = bool(fresh) and _write(rt, window, fresh)
            report["written"] = written
            report["decisions"] = [
                {
                    "workspace_id": v.workspace_id,
                    "from_quota": v.from_quota,
                    "to_quota": v.to_quota,
                    "reason_code": v.reason_code if written or not fresh else ALREADY_EVALUATED,
                }
                for v in results
            ]
        except GateUnavailable as exc:
            report["error"] = str(exc)
            log.error("gate failed: %s", exc, extra={"action": "gate.failed", "window": window})
            raise
    for d in report["decisions"]:
        log.info("gate decision", extra={"action": "gate.decision", "window": window, **d})
    return report


def reset_state(rt: Runtime, workspace_id: str | None) -> dict[str, Any]:
    """Repair gate state: clear streaks and last-evaluated windows (rungs kept),
    and a window marker that names a window not finished yet.

    For a gate frozen at ALREADY_EVALUATED by a window written for the future.
    """
    latest = last_window_start(rt.now(), rt.settings.gate_window_s).isoformat()
    try:
        before, dropped = rt.control.reset_gate(
            None if workspace_id is None else [workspace_id], latest
        )
    except RedisError as exc:
        raise GateUnavailable(f"the gate state in Redis is unreachable: {exc}") from exc
    return {
        "reset": sorted(before),
        "before": {w: state.to_dict() for w, state in before.items()},
        "window_marker_dropped": dropped,
    }


@shared_task(name="fairbeat.gate", bind=True)
def gate(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    return run_gate(self.app)
