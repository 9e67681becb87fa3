"""Pruning on both databases: what goes, and what never goes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fairbeat.scheduling.retention import TABLES
from fairbeat.store.models import alert_table, duplicate_event_table, function_run_table, job_table
from fairbeat.tasks.maintenance import prune, run_maintenance
from fairbeat.tasks.runtime import Runtime, runtime_of
from fairbeat.tasks.settings import Settings
from tests.conftest import AppFactory
from tests.store.conftest import RuntimeFactory
from tests.store.retention_rows import T0, episode, insert, jobs, run, statuses


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
