"""The run ledger written once (tasks/ledger.py), on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.store import runs
from fairbeat.store.models import function_run_table
from fairbeat.tasks import ledger
from fairbeat.tasks.runtime import runtime_of


def run_row(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(function_run_table).where(function_run_table.c.id == run_id)
        ).mappings()
        return dict(row.one())


def test_a_run_that_returns_is_finished_succeeded_with_its_report(
    app: Celery, engine: Engine
) -> None:
    rt = runtime_of(app)
    with ledger.entry(rt, "gate", "w1", rt.now()) as run:
        assert run is not None
        run.report["written"] = True
        assert run.heartbeat()
    row = run_row(engine, run.run_id)
    assert (row["status"], row["report"], row["fence"]) == (runs.SUCCEEDED, {"written": True}, 1)
    # The next run of the same function is fenced one higher; another function starts at 1.
    with ledger.entry(rt, "gate", "w2", rt.now()) as second:
        assert second is not None and second.fence == 2
    with ledger.entry(rt, "maintenance", "w1", rt.now()) as other:
        assert other is not None and other.fence == 1


def test_a_run_that_raises_is_finished_failed_and_the_error_goes_on(
    app: Celery, engine: Engine
) -> None:
    rt = runtime_of(app)
    with (
        pytest.raises(RuntimeError, match="boom"),
        ledger.entry(rt, "maintenance", "w1", rt.now()) as run,
    ):
        assert run is not None
        run.report["error"] = "boom"
        raise RuntimeError("boom")
    assert run is not None
    row = run_row(engine, run.run_id)
    assert (row["status"], row["report"]) == (runs.FAILED, {"error": "boom"})


def test_a_window_that_already_ran_yields_none_and_writes_nothing(
    app: Celery, engine: Engine
) -> None:
    rt = runtime_of(app)
    with ledger.entry(rt, "gate", "w1", rt.now()) as first:
        assert first is not None
    with ledger.entry(rt, "gate", "w1", rt.now()) as again:
        assert again is None
    with engine.connect() as conn:
        assert conn.execute(select(function_run_table.c.id)).scalars().all() == [first.run_id]


def test_a_run_declared_stale_stops_heartbeating_and_its_finish_is_refused(
    app: Celery, engine: Engine
) -> None:
    rt = runtime_of(app)
    # The dispatcher passes the fence its lease carries.
    with ledger.entry(rt, "dispatch", "beat:1", rt.now(), fence=7) as run:
        assert run is not None and run.fence == 7
        with engine.begin() as conn:
            runs.mark_stale(conn, rt.now() + timedelta(seconds=1), rt.now())
        assert not run.heartbeat()
        run.report["late"] = True
    row = run_row(engine, run.run_id)
    assert (row["status"], row["report"]) == (runs.STALE, None)
