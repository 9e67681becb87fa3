"""A simulated day of load and maintenance: every table stays bounded, every needed row stays."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from fairbeat.scheduling.retention import TABLES, cutoffs, retained_rows_bound
from fairbeat.store.models import (
    alert_table,
    duplicate_event_table,
    function_run_table,
    gate_decision_table,
    health_snapshot_table,
    job_table,
)
from fairbeat.store.retention import TARGETS, row_counts
from fairbeat.tasks.maintenance import prune
from tests.store.conftest import RuntimeFactory
from tests.store.retention_rows import T0, episode, insert, jobs, run

STEP = timedelta(minutes=5)
TICKS = 24 * 12
DAY_SETTINGS: dict[str, Any] = {
    "retain_succeeded_s": 2 * 3600.0,
    "retain_failed_s": 6 * 3600.0,
    "retain_cancelled_s": 3 * 3600.0,
    "retain_function_run_s": 3600.0,
    "retain_duplicate_event_s": 4 * 3600.0,
    "retain_gate_decision_s": 12 * 3600.0,
    "retain_alert_s": 8 * 3600.0,
    "retain_health_snapshot_s": 2 * 3600.0,
    "prune_batch_size": 25,
    "prune_max_batches": 4,
}
# Rows each tick adds, per pruned kind (alerts: one episode per hour).
PER_TICK = {
    "job_succeeded": 20,
    "job_failed": 3,
    "job_cancelled": 2,
    "function_run": 5,
    "duplicate_event": 1,
    "gate_decision": 3,
    "alert": 1 / 12,
    "health_snapshot": 1,
}


def tick_rows(i: int, at: datetime) -> dict[Any, list[dict[str, Any]]]:
    """One tick's load: finished work of every kind, and unfinished jobs that never finish."""
    return {
        job_table: [
            *jobs("SUCCEEDED", at, 20),
            *jobs("FAILED", at, 3),
            *jobs("CANCELLED", at, 2),
            *jobs("PENDING", at + timedelta(days=2), 2, workspace="later"),
            *(jobs("RUNNING", at, 1, workspace="stuck") if i % 24 == 0 else []),
        ],
        function_run_table: [run("dispatch", at) for _ in range(5)],
        duplicate_event_table: [
            {"workspace_id": "acme", "job_id": i, "fence": 1, "reason": "X", "created_at": at}
        ],
        gate_decision_table: [
            {
                "window": f"w{i}",
                "workspace_id": f"ws{n}",
                "from_quota": 16,
                "to_quota": 16,
                "reason_code": "HOLD",
                "evidence": {},
                "decided_at": at,
            }
            for n in range(3)
        ],
        health_snapshot_table: [{"taken_at": at, "data": {}}],
        alert_table: [episode(at, at + timedelta(minutes=30))] if i % 12 == 0 else [],
    }


def table_counts(engine: Engine, since: dict[str, datetime]) -> dict[str, tuple[int, int]]:
    """Per pruned kind: rows in all, and rows at or after its cutoff."""
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            target = TARGETS[name]
            table, column = target.table, target.table.c[target.time_column]
            where = [job_table.c.status == name.split("_")[1].upper()] if table is job_table else []
            total = conn.execute(select(func.count()).select_from(table).where(*where))
            recent = conn.execute(
                select(func.count()).select_from(table).where(*where, column >= since[name])
            )
            out[name] = (int(total.scalar_one()), int(recent.scalar_one()))
    return out


def test_a_simulated_day_keeps_every_table_bounded_and_every_needed_row(
    make_runtime: RuntimeFactory,
) -> None:
    rt = make_runtime(**DAY_SETTINGS)
    policy = rt.settings.retention
    floor_s = 2 * policy.gate_window_s + STEP.total_seconds()
    bounds = {
        name: retained_rows_bound(
            policy.kept_s(name), floor_s, PER_TICK[name] / STEP.total_seconds(), slack=25
        )
        for name in TABLES
    }
    arrived: dict[str, list[datetime]] = {name: [] for name in TABLES}
    unfinished = 0
    for i in range(TICKS):
        now = T0 + i * STEP
        rows = tick_rows(i, now)
        insert(rt.engine, rows)
        unfinished += sum(1 for r in rows[job_table] if r["finished_at"] is None)
        for name in TABLES:
            arrived[name] += [r[TARGETS[name].time_column] for r in _of_kind(rows, name)]
        prune(rt, now)
        plan = cutoffs(policy, now)
        counts = table_counts(rt.engine, plan.before)
        for name, (total, recent) in counts.items():
            assert total <= bounds[name], f"tick {i}: {name} holds {total} > {bounds[name]}"
            still_needed = sum(1 for at in arrived[name] if at >= plan.before[name])
            assert recent == still_needed, f"tick {i}: a {name} row still needed was pruned"
        with rt.engine.connect() as conn:
            assert row_counts(conn)["job_unfinished"] == unfinished
    # And the day did prune: far fewer rows are left than arrived
    assert sum(c for c, _ in counts.values()) < sum(len(a) for a in arrived.values()) / 4


def _of_kind(rows: dict[Any, list[dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    target = TARGETS[name].table
    if target is job_table:
        status = name.split("_")[1].upper()
        return [r for r in rows[job_table] if r["status"] == status]
    return rows.get(target, [])
