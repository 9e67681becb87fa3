"""Fairness by worker time on both databases and real Redis: the estimates a finish
records, and the shares a tick plans from them."""

from __future__ import annotations

from collections import Counter

import redis
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.store import claiming
from fairbeat.store.keys import Keys
from fairbeat.store.live import LiveState
from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.run import SUCCEEDED, execute
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory


def claimed(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(job_table.c.workspace_id).where(job_table.c.status == "CLAIMED")
        ).all()
    return Counter(r.workspace_id for r in rows)


def test_estimates_are_an_ewma_per_workspace_and_per_kind(redis_client: redis.Redis) -> None:
    live = LiveState(redis_client, Keys("fbtest"))
    live.record_run_time("acme", "report", 2.0, alpha=0.5)
    live.record_run_time("acme", "report", 4.0, alpha=0.5)
    live.record_run_time("acme", "ping", 1.0, alpha=0.5)
    by_ws, by_kind = live.run_time_estimates(["acme", "other"], [("acme", "report")])
    assert by_ws == {"acme": 2.0}  # 2 -> 3 -> 2
    assert by_kind == {("acme", "report"): 3.0}


def _tick_shares(app: Celery, engine: Engine) -> Counter[str]:
    for _ in range(20):
        enqueue("fast", "test.noop", {}, app=app)
        enqueue("slow", "test.noop", {}, app=app)
    live = runtime_of(app).live
    live.record_run_time("fast", "test.noop", 1.0, alpha=1.0)
    live.record_run_time("slow", "test.noop", 4.0, alpha=1.0)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert report.claimed == 10
    return claimed(engine)


def test_by_time_a_workspace_with_4x_shorter_jobs_gets_4x_the_starts(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(fairness="time", autoscale_enabled=False, global_capacity=10, claim_batch=10)
    assert _tick_shares(app, engine) == {"fast": 8, "slow": 2}


def test_by_count_they_get_equal_starts(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(fairness="count", autoscale_enabled=False, global_capacity=10, claim_batch=10)
    assert _tick_shares(app, engine) == {"fast": 5, "slow": 5}


def test_a_finished_job_updates_its_estimate_only_when_fair_by_time(
    make_app: AppFactory, engine: Engine
) -> None:
    for mode, expected in (("count", set()), ("time", {"acme"})):
        app = make_app(fairness=mode)
        enqueue("acme", "test.noop", {}, app=app)
        with engine.begin() as conn:
            (claim,) = claiming.claim_oldest_due(conn, runtime_of(app).now(), 1)
        assert execute(app, claim.job_id, claim.fence) == SUCCEEDED
        by_ws, _ = runtime_of(app).live.run_time_estimates(["acme"])
        assert set(by_ws) == expected
        assert by_ws.get("acme", 0.0) >= 0.0


def test_fair_by_time_keeps_the_per_slot_bound_and_claims_nothing_ahead(
    make_app: AppFactory,
) -> None:
    from fairbeat.tasks import capacity

    by_count = runtime_of(make_app(fleet_claims_per_slot=2, claim_ahead_s=0.25))
    by_time = runtime_of(make_app(fleet_claims_per_slot=2, claim_ahead_s=0.25, fairness="time"))
    # No worker reported: one worker of the default concurrency is assumed.
    slots = by_count.settings.worker_concurrency
    fast = 400.0  # finished jobs per second
    assert capacity.fleet(by_count, False, fast).capacity == slots + 100
    assert capacity.fleet(by_time, False, fast).capacity == 2 * slots
