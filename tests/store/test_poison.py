"""Poison rows and misconfigured workspaces, on both databases: isolated, never fatal.

Each test writes the poison with plain SQL (as the SQL contract allows an app
in another language to) next to an innocent workspace's job enqueued as
usual, and holds that the innocent job is claimed in the same tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from fairbeat.exporter import FairbeatCollector
from fairbeat.scheduling.reasons import WORKSPACE_MISCONFIGURED
from fairbeat.store import job_queries, migrate, poison, selection
from fairbeat.store.db import make_engine
from fairbeat.store.models import function_run_table, metadata
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.application import create_app
from fairbeat.tasks.dispatch import BEAT, Dispatcher
from fairbeat.tasks.gate import last_window_start, run_gate
from fairbeat.tasks.health import snapshot
from fairbeat.tasks.maintenance import run_maintenance
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.settings import Settings
from tests.conftest import AppFactory
from tests.poison_rows import (
    CHECKS,
    bad_run_ats,
    insert_job,
    set_workspace,
    without_checks,
)

_windows = iter(range(10**6))


@pytest.fixture
def unguarded(engine: Engine) -> Iterator[Engine]:
    """The database as it was before migration 0010: no CHECK constraints."""
    with without_checks(engine):
        yield engine


def job_row(engine: Engine, job_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = job_queries.get_job(conn, job_id)
    assert row is not None
    return row


def maintain(app: Celery) -> dict[str, Any]:
    return run_maintenance(app, window_key=f"poison:{next(_windows)}")


def test_unloadable_run_at_rows_are_dead_lettered_and_the_innocent_job_is_claimed(
    app: Celery, unguarded: Engine
) -> None:
    # Given rows whose run_at no driver can load, in two workspaces
    poisoned = [
        insert_job(unguarded, f"bad-{i % 2}", v) for i, v in enumerate(bad_run_ats(unguarded))
    ]
    # And an innocent workspace's job, enqueued as usual
    innocent = enqueue("innocent", "test.noop", {}, app=app)
    # Then `fairbeat status` reads, before anything was repaired
    assert snapshot(runtime_of(app), datetime.now(UTC))["due_pending"] >= 1
    # When one beat dispatch runs
    summary = Dispatcher(app).run(BEAT)
    # Then the innocent job is claimed in that tick
    assert job_row(unguarded, innocent.job_id)["status"] == "CLAIMED"
    assert summary.claimed == 1
    # And maintenance dead-letters whatever the dispatcher's quick sweep left
    report = maintain(app)
    assert "failed_steps" not in report
    for job_id in poisoned:
        row = job_row(unguarded, job_id)
        assert row["status"] == "FAILED", row
        assert row["last_error"].startswith("POISON_RUN_AT: run_at "), row
        assert "fairbeat jobs retry" in row["last_error"]
        assert row["run_at"] is not None  # loadable again: rewritten to the quarantine time
    assert report["quarantined"] <= len(poisoned)  # the rest went in the dispatch tick
    # And the runs are recorded as succeeded
    with unguarded.connect() as conn:
        statuses = set(conn.execute(select(function_run_table.c.status)).scalars())
    assert statuses == {"SUCCEEDED"}


def test_a_fence_at_the_limit_is_skipped_by_the_claim_and_quarantined(
    app: Celery, unguarded: Engine
) -> None:
    stuck = insert_job(unguarded, "bad", datetime(2026, 1, 1, tzinfo=UTC), fence=poison.MAX_FENCE)
    innocent = enqueue("innocent", "test.noop", {}, app=app)
    Dispatcher(app).run(BEAT)
    assert job_row(unguarded, innocent.job_id)["status"] == "CLAIMED"
    assert job_row(unguarded, stuck)["status"] == "PENDING"  # skipped, never claimed
    assert maintain(app)["quarantined"] == 1
    row = job_row(unguarded, stuck)
    assert row["status"] == "FAILED" and row["last_error"].startswith("POISON_FENCE")


BAD_LIMITS: list[dict[str, float]] = [
    {"weight": float("inf")},
    {"weight": 0.0},
    {"weight": -1.0},
    {"weight": 1e300},
    {"rate_limit_per_s": float("inf")},
    {"rate_limit_per_s": -1.0},
    {"rate_limit_per_s": 1e-300},
    {"rate_limit_per_s": 1e300},
]


@pytest.mark.parametrize(
    "limits", BAD_LIMITS, ids=lambda v: f"{next(iter(v))}={next(iter(v.values()))}"
)
def test_a_misconfigured_workspace_is_held_and_everyone_else_is_served(
    make_app: AppFactory, unguarded: Engine, limits: dict[str, float]
) -> None:
    app = make_app(tier_rate_limits={"default": 50.0})
    # Given a workspace whose row holds an unusable limit, written by SQL
    set_workspace(unguarded, "broken", **limits)
    for _ in range(3):
        enqueue("broken", "test.noop", {}, app=app)
    innocent = enqueue("innocent", "test.noop", {}, app=app)
    # When two ticks run (the second reads the rate-limit state the first wrote)
    first = Dispatcher(app).tick(1, True)
    second = Dispatcher(app).tick(2, True)
    # Then the innocent job is claimed and the broken workspace's jobs are held, explained
    assert job_row(unguarded, innocent.job_id)["status"] == "CLAIMED"
    assert first.unclaimed == {WORKSPACE_MISCONFIGURED: 3}
    assert second.unclaimed == {WORKSPACE_MISCONFIGURED: 3}
    with unguarded.connect() as conn:
        profile = selection.profiles(conn, ["broken"])["broken"]
    assert profile.misconfigured and set(profile.misconfigured) == set(limits)
    # And `fairbeat status` names it, and what is wrong
    shown = snapshot(runtime_of(app), datetime.now(UTC))["misconfigured_workspaces"]
    assert shown == {"broken": profile.misconfigured}


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """PostgreSQL alone: what only PostgreSQL can hold (NaN floats, CHECK constraints)."""
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    yield engine
    engine.dispose()


@pytest.fixture
def pg_app(pg_url: str, pg_engine: Engine, redis_url: str, redis_client: redis.Redis) -> Celery:
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        imports=["tests.handlers"],
        redis_prefix="fbtest",
        tier_rate_limits={"default": 50.0},
    )
    return create_app(settings)


def test_nan_limits_are_held_on_postgresql(pg_app: Celery, pg_engine: Engine) -> None:
    # (SQLite stores a NaN as NULL: there a NaN weight cannot be written at all.)
    with without_checks(pg_engine):
        set_workspace(pg_engine, "nan-w", weight=float("nan"))
        set_workspace(pg_engine, "nan-r", rate_limit_per_s=float("nan"))
        for ws in ("nan-w", "nan-r"):
            enqueue(ws, "test.noop", {}, app=pg_app)
        innocent = enqueue("innocent", "test.noop", {}, app=pg_app)
        report = Dispatcher(pg_app).tick(1, True)
        assert report.unclaimed == {WORKSPACE_MISCONFIGURED: 2}
        assert job_row(pg_engine, innocent.job_id)["status"] == "CLAIMED"


def test_the_checks_refuse_poison_at_the_door_on_postgresql(pg_engine: Engine) -> None:
    engine = pg_engine
    for value in ["-infinity", "infinity"]:
        with pytest.raises(IntegrityError, match="ck_job_run_at_loadable"):
            insert_job(engine, "acme", value)
    with pytest.raises(IntegrityError, match="ck_job_max_attempts_positive"):
        insert_job(engine, "acme", "2026-01-01 00:00+00", max_attempts=0)
    for weight in [float("nan"), float("inf"), 0.0]:
        with pytest.raises(IntegrityError, match="ck_workspace_weight_usable"):
            set_workspace(engine, "acme", weight=weight)
    with pytest.raises(IntegrityError, match="ck_workspace_rate_limit_usable"):
        set_workspace(engine, "acme", rate_limit_per_s=float("inf"))


def test_migration_0010_repairs_rows_written_before_it(pg_engine: Engine) -> None:
    engine = pg_engine
    migrate.downgrade(engine, "0007_cancel")
    try:
        poisoned = insert_job(engine, "acme", "-infinity")
        zero = insert_job(engine, "acme", "2026-01-01 00:00+00", max_attempts=0)
        set_workspace(engine, "broken", weight=float("nan"), rate_limit_per_s=float("inf"))
        migrate.upgrade(engine)
        row = job_row(engine, poisoned)
        assert row["status"] == "FAILED" and "dead-lettered by migration 0010" in row["last_error"]
        assert job_row(engine, zero)["max_attempts"] == 1
        with engine.connect() as conn:
            names = set(
                conn.execute(
                    text("SELECT conname FROM pg_constraint WHERE contype = 'c' AND convalidated")
                ).scalars()
            )
            ws = conn.execute(text("SELECT weight, rate_limit_per_s FROM workspace")).one()
        assert {n for checks in CHECKS.values() for n in checks} <= names
        assert (ws.weight, ws.rate_limit_per_s) == (1.0, None)
    finally:
        migrate.upgrade(engine)


def test_queue_age_counts_from_enqueue_when_run_at_is_in_the_past(
    app: Celery, engine: Engine
) -> None:
    # Given a job enqueued now with a run_at in the year 2000 ("due now")
    enqueue("acme", "test.noop", {}, run_at=datetime(2000, 1, 1, tzinfo=UTC), app=app)
    # Then it has waited seconds, not 26 years
    snap = snapshot(runtime_of(app), datetime.now(UTC) + timedelta(seconds=5))
    assert snap["queue_age_p95_s"] is not None and snap["queue_age_p95_s"] < 60
    assert snap["oldest_due_age_s"] is not None and snap["oldest_due_age_s"] < 60
    assert maintain(app)["alerts"] == []


def test_the_exporter_and_gate_read_past_poison(app: Celery, unguarded: Engine) -> None:
    rt = runtime_of(app)
    now = rt.now()
    start = last_window_start(now, rt.settings.gate_window_s)
    # Given a poison row left RUNNING inside the gate's window, and a broken workspace
    insert_job(
        unguarded,
        "bad",
        bad_run_ats(unguarded)[0],
        status="RUNNING",
        started_at=start + timedelta(seconds=1),
    )
    set_workspace(unguarded, "broken", weight=float("inf"))
    enqueue("broken", "test.noop", {}, app=app)
    enqueue("innocent", "test.noop", {}, app=app)
    # Then a scrape, a gate run and a status all answer
    registry = CollectorRegistry()
    registry.register(FairbeatCollector(rt))
    assert b"fairbeat_jobs" in generate_latest(registry)
    assert "error" not in run_gate(app, start)
    assert snapshot(rt, now)["by_status"]["RUNNING"] == 1


def test_a_failing_maintenance_step_is_reported_and_the_others_still_run(
    app: Celery, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given recovery raises (an error of fairbeat's own, as a bug would)
    def broken(*_args: object) -> None:
        raise RuntimeError("cannot reach redis://:s3cret@h:1/0 in recovery")

    monkeypatch.setattr("fairbeat.tasks.maintenance.recover_jobs", broken)
    # When maintenance runs, then the health step after it still ran
    report = maintain(app)
    assert "health" in report and "quarantined" in report
    assert report["failed_steps"] == {
        "recover": "RuntimeError: cannot reach redis://:***@h:1/0 in recovery"
    }
    # And the run is recorded as FAILED, with that report
    with engine.connect() as conn:
        (status,) = conn.execute(select(function_run_table.c.status)).scalars()
    assert status == "FAILED"
