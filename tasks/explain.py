"""What ``fairbeat status`` explains: per active workspace its backlog, quota,
rung and why its due jobs wait; the fleet; the last dispatch, gate and
maintenance runs. Read-only: the dispatcher's own plan, made and not carried out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Celery
from redis import RedisError

from fairbeat.scheduling.quota import rate_limit_of
from fairbeat.scheduling.waits import tick_reasons, workspace_waits
from fairbeat.store import job_queries, runs, selection
from fairbeat.tasks import capacity
from fairbeat.tasks.dispatch import Dispatcher

RECENT_RUNS = 5  # the dispatch runs whose ticks the waiting reasons sum


def _redis_ok(dispatcher: Dispatcher) -> bool:
    try:
        return bool(dispatcher.rt.live.client.ping())
    except RedisError:
        return False


def _run_summary(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keep = ("id", "status", "window_key", "started_at", "finished_at")
    return {**{k: row[k] for k in keep}, "report": row["report"]}


def workspaces(app: Celery, now: datetime) -> dict[str, Any]:
    """Active workspace -> pending, due, in flight, quota, rung, paused, waiting now."""
    d = Dispatcher(app)
    settings, redis_ok = d.settings, _redis_ok(d)
    planned = d.plan_tick(redis_ok, now)
    with d.rt.engine.connect() as conn:
        due = selection.due_by_workspace(conn, now, settings.partition_cap + 1)
        in_flight = selection.in_flight_by_workspace(conn)
        counts = job_queries.count_by_workspace(conn)
        active = sorted({w for w, c in counts.items() if c.get("PENDING")} | set(in_flight))
        profiles = selection.profiles(conn, active)
    limits = {w: r for w in due if (r := rate_limit_of(profiles[w], settings.tier_rate_limits))}
    rates = capacity.rate_allowances(limits, planned.rate_tats, now.timestamp())
    demands, _ = d._demands(due, in_flight, {w: profiles[w] for w in due}, rates, redis_ok)
    plan = planned.plan
    waits = workspace_waits(demands, plan.allocations, plan.unclaimed, settings.partition_cap)
    quotas = {dm.workspace_id: dm.quota for dm in demands}
    try:
        ladder = d.rt.control.ladder() if redis_ok else {}
    except RedisError:
        ladder = {}
    return {
        w: {
            "pending": counts.get(w, {}).get("PENDING", 0),
            "due": due.get(w, 0),
            "in_flight": in_flight.get(w, 0),
            "quota": quotas.get(w),
            "rung": ladder.get(w),
            "paused": profiles[w].paused,
            "tier": profiles[w].tier,
            "waiting": waits.get(w, {}),
        }
        for w in active
    }


def explain(app: Celery, now: datetime) -> dict[str, Any]:
    """The whole picture ``fairbeat status`` shows beside the health figures."""
    d = Dispatcher(app)
    with d.rt.engine.connect() as conn:
        dispatches = runs.latest(conn, "dispatch", RECENT_RUNS)
        gate = runs.latest(conn, "gate")
        maintenance = runs.latest(conn, "maintenance")
    ticks = [
        t.get("unclaimed", {})
        for r in dispatches
        for t in (r["report"] or {}).get("last_ticks", [])
    ]
    try:
        workers = [vars(w) for w in d.rt.live.worker_slots()]
    except RedisError:
        workers = []
    return {
        "workspaces": workspaces(app, now),
        "waited_last_ticks": tick_reasons(ticks),
        "fleet": {
            "workers": workers,
            "slots": sum(w["slots"] for w in workers),
            "queues": sorted({q for w in workers for q in w["queues"]}),
        },
        "last_runs": {
            "dispatch": _run_summary(dispatches[0] if dispatches else None),
            "gate": _run_summary(gate[0] if gate else None),
            "maintenance": _run_summary(maintenance[0] if maintenance else None),
        },
    }
