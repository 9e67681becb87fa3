"""Pruning on both databases: what goes, what never goes, and a simulated day."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
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
from fairbeat.tasks.maintenance import prune, run_maintenance
from fairbeat.tasks.runtime import Runtime, runtime_of
from fairbeat.tasks.settings import Settings
from tests.conftest import AppFactory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = count(1)


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(database_url: str) -> Iterator[RuntimeFactory]:
    made: list[Runtime] = []

    def build(**values: Any) -> Runtime:
        made.append(Runtime(Settings(database_url=database_url, **values)))
        return made[-1]

    yield build
    for rt in made:
        rt.engine.dispose()


@pytest.fixture
def runtime(make_runtime: RuntimeFactory) -> Runtime:
    return make_runtime()


def jobs(status: str, at: datetime, n: int = 1, workspace: str = "acme") -> list[dict[str, Any]]:
    finished = at if status in ("SUCCEEDED", "FAILED", "CANCELLED") else None
    started = at if status in ("RUNNING", "SUCCEEDED", "FAILED") else None
    return [
        {
            "workspace_id": workspace,
            "kind": "test.send",
            "payload": {},
            "status": status,
            "run_at": at,
            "created_at": at,
            "started_at": started,
            "locked_at": started,
            "finished_at": finished,
        }
        for _ in range(n)
    ]


def run(function: str, at: datetime, status: str = "SUCCEEDED") -> dict[str, Any]:
    n = next(_ids)
    return {
        "function": function,
        "window_key": f"k{n}",
        "status": status,
        "fence": n,
        "started_at": at,
        "heartbeat_at": at,
        "finished_at": None if status == "RUNNING" else at,
        "report": {},
    }


def episode(at: datetime, resolved: datetime | None) -> dict[str, Any]:
    n = next(_ids)
    return {
        "kind": "STALE_RUN",
        "episode": f"e{n}",
        "fired_at": at,
        "resolved_at": resolved,
        "payload": {},
    }


def insert(engine: Engine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    with engine.begin() as conn:
        for table, values in rows.items():
            if values:
                conn.execute(table.insert(), values)


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(job_table.c.status, func.count()).group_by(job_table.c.status))
        return {status: int(n) for status, n in rows}


def test_old_finished_rows_go_and_unfinished_jobs_stay_whatever_their_age(
    runtime: Runtime,
) -> None:
    # Given a year-old backlog of every kind, and fresh finished rows
    old, now = T0 - timedelta(days=365), T0
    fresh = now - timedelta(minutes=1)
    insert(
        runtime.engine,
        {
            job_table: [
                *(r for s in ("PENDING", "CLAIMED", "RUNNING") for r in jobs(s, old, 2)),
                *(r for s in ("SUCCEEDED", "FAILED", "CANCELLED") for r in jobs(s, old, 3)),
                *jobs("SUCCEEDED", fresh, 2),
            ],
            function_run_table: [
                run("maintenance", old, "RUNNING"),
                run("dispatch", old),
                run("dispatch", old, "STALE"),
                run("dispatch", old),  # the highest fence of its function: the fence floor
            ],
            alert_table: [episode(old, None), episode(old, old + timedelta(hours=1))],
        },
    )
    # When pruning with every retention overridden to zero
    report = prune(runtime, now, older_than_s=0)
    # Then every finished job of a year ago went; the unfinished ones and the fresh ones stayed
    assert statuses(runtime.engine) == {"PENDING": 2, "CLAIMED": 2, "RUNNING": 2, "SUCCEEDED": 2}
    assert report["deleted"]["job_failed"] == 3 and report["reason_code"] == "OLDER_THAN_OVERRIDE"
    # And the running run, the newest run of each function and the open episode stayed
    with runtime.engine.connect() as conn:
        left = conn.execute(select(function_run_table.c.status, function_run_table.c.function))
        assert sorted(left) == [("RUNNING", "maintenance"), ("SUCCEEDED", "dispatch")]
        resolved = conn.execute(select(alert_table.c.resolved_at)).scalars().all()
        assert resolved == [None]


def test_retention_per_status_and_a_dry_run_deletes_nothing(runtime: Runtime) -> None:
    now = T0
    insert(
        runtime.engine,
        {
            job_table: [
                *jobs("SUCCEEDED", now - timedelta(days=8)),
                *jobs("SUCCEEDED", now - timedelta(days=6)),
                *jobs("FAILED", now - timedelta(days=8)),  # kept 30 days by default
                *jobs("CANCELLED", now - timedelta(days=31)),
            ]
        },
    )
    dry = prune(runtime, now, dry_run=True)
    assert dry["would_delete"]["job_succeeded"] == 1 and dry["would_delete"]["job_cancelled"] == 1
    assert sum(statuses(runtime.engine).values()) == 4
    report = prune(runtime, now)
    assert report["deleted"] == {**dict.fromkeys(TABLES, 0), "job_succeeded": 1, "job_cancelled": 1}
    assert statuses(runtime.engine) == {"SUCCEEDED": 1, "FAILED": 1}


def test_evidence_of_the_previous_gate_window_is_kept_even_at_zero_retention(
    runtime: Runtime,
) -> None:
    now = T0 + timedelta(minutes=7)  # the gate next evaluates 23:45-00:00
    in_window = T0 - timedelta(minutes=14)
    before_window = T0 - timedelta(minutes=16)
    insert(
        runtime.engine,
        {
            job_table: [*jobs("SUCCEEDED", in_window), *jobs("SUCCEEDED", before_window)],
            duplicate_event_table: [
                {"workspace_id": "acme", "job_id": 1, "fence": 1, "reason": "X", "created_at": t}
                for t in (in_window, before_window)
            ],
            function_run_table: [run("dispatch", in_window), run("dispatch", before_window)],
        },
    )
    report = prune(runtime, now, older_than_s=0)
    assert report["evidence_floor"] == (T0 - timedelta(minutes=15)).isoformat()
    assert report["deleted"]["job_succeeded"] == 1
    assert report["deleted"]["duplicate_event"] == 1
    with runtime.engine.connect() as conn:
        kept = conn.execute(select(job_table.c.finished_at)).scalars().all()
    assert kept == [in_window]


def test_each_statement_deletes_a_bounded_batch_and_a_run_stops_at_its_budget(
    make_runtime: RuntimeFactory,
) -> None:
    rt = make_runtime(prune_batch_size=3, prune_max_batches=2)
    insert(rt.engine, {job_table: jobs("SUCCEEDED", T0 - timedelta(days=30), 10)})
    first = prune(rt, T0)
    assert first["deleted"]["job_succeeded"] == 6 and first["more"] == ["job_succeeded"]
    second = prune(rt, T0)
    assert second["deleted"]["job_succeeded"] == 4 and second["more"] == []


# A simulated day: five-minute ticks, retentions of hours, small prune budgets.
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


def test_maintenance_prunes_on_each_run_and_reports_it(make_app: AppFactory) -> None:
    # Given a dead letter a year old and one from a minute ago
    app = make_app()
    rt = runtime_of(app)
    now = rt.now()
    insert(
        rt.engine,
        {
            job_table: [
                *jobs("FAILED", now - timedelta(days=365)),
                *jobs("FAILED", now - timedelta(minutes=1)),
            ]
        },
    )
    # When maintenance runs
    report = run_maintenance(app, window_key="test:retention")
    # Then the old one went, and the report says so
    assert report["pruned"]["job_failed"] == 1
    assert statuses(rt.engine) == {"FAILED": 1}


def test_rows_another_transaction_holds_are_skipped_not_waited_on(pg_url: str) -> None:
    # PostgreSQL only: SQLite has no row locks (it serialises writers).
    rt = Runtime(Settings(database_url=pg_url))
    with rt.engine.begin() as conn:
        conn.execute(job_table.delete())
    insert(rt.engine, {job_table: jobs("SUCCEEDED", T0 - timedelta(days=30), 4)})
    with rt.engine.connect() as holder:
        # Given another transaction holding the two oldest finished jobs
        held = holder.execute(
            select(job_table.c.id).order_by(job_table.c.id).limit(2).with_for_update()
        ).scalars()
        held_ids = list(held)
        # When a prune runs meanwhile, it does not wait: it deletes the other two
        assert prune(rt, T0)["deleted"]["job_succeeded"] == 2
        holder.rollback()
    # And once they are free, the next prune takes them
    assert prune(rt, T0)["deleted"]["job_succeeded"] == 2
    assert len(held_ids) == 2
    rt.engine.dispose()
