"""The dispatcher in-process, on both databases and real Redis: fair, bounded, explained."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, event, select

from fairbeat.scheduling.fair import FairState
from fairbeat.scheduling.fleet import FLEET_SLOTS_UNKNOWN, WorkerSlots
from fairbeat.scheduling.reasons import (
    FLEET_SLOTS,
    LADDER_UNAVAILABLE,
    PARTITION_CAP,
    WORKSPACE_PAUSED,
    WORKSPACE_QUOTA,
)
from fairbeat.scheduling.tick import RunReport
from fairbeat.store import selection, workspaces
from fairbeat.store.models import function_run_table, job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.dispatch import BEAT, Dispatcher
from fairbeat.tasks.errors import WorkspaceBacklogFull
from fairbeat.tasks.kick import KICK
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory

DEAD_REDIS = "redis://127.0.0.1:1/0"


def fill(app: Celery, workspace: str, n: int, kind: str = "test.noop") -> None:
    for _ in range(n):
        enqueue(workspace, kind, {}, app=app)


def statuses(engine: Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(job_table.c.workspace_id, job_table.c.status)).all()
    return Counter((r.workspace_id, r.status) for r in rows)


def run_messages(client: redis.Redis, queue: str = "jobs.default") -> list[Any]:
    """The fairbeat.run messages waiting in a Redis-broker queue: (job_id, fence) each."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append(tuple(body[0]))
    return out


def test_a_tick_serves_the_small_workspace_next_to_a_hot_backlog(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(autoscale_enabled=False, global_capacity=8, claim_batch=8, partition_cap=6)
    fill(app, "hot", 40)
    fill(app, "small", 2)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    counts = statuses(engine)
    assert counts[("small", "CLAIMED")] == 2
    assert counts[("hot", "CLAIMED")] == 6
    assert report.claimed == 8 and report.sent == 8
    # Every due job the tick saw is claimed or explained.
    assert report.selected == 7 + 2  # the hot count stops at cap + 1
    assert report.claimed + sum(report.unclaimed.values()) == report.selected
    assert report.unclaimed == {PARTITION_CAP: 1}
    assert len(run_messages(redis_client)) == 8


def test_a_dead_broker_hands_the_claims_back_and_a_later_tick_sends_each_once(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    # The broker refuses connections; fairbeat's own Redis (the lease) still answers.
    dead = make_app(broker_url="redis://127.0.0.1:1/0")
    dead.conf.broker_connection_max_retries = 0
    fill(dead, "hot", 5)
    fill(dead, "bystander", 1)
    report = Dispatcher(dead).tick(fence=0, redis_ok=True)
    assert report.claimed == 6 and report.sent == 0 and report.released == 6
    assert {status for (_, status) in statuses(engine)} == {"PENDING"}
    healthy = make_app()
    again = Dispatcher(healthy).tick(fence=0, redis_ok=True)
    assert again.sent == 6 and again.released == 0
    sent = run_messages(redis_client)
    assert len(sent) == len({job_id for job_id, _ in sent}) == 6


def test_quota_pins_and_the_tier_base_bound_in_flight_jobs(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(autoscale_enabled=False, global_capacity=100, claim_batch=100, partition_cap=50)
    live = runtime_of(app).live
    redis_client.hset(live.keys.quota_pins, "pinned", 3)
    fill(app, "pinned", 10)
    fill(app, "plain", 20)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    counts = statuses(engine)
    assert counts[("pinned", "CLAIMED")] == 3
    assert counts[("plain", "CLAIMED")] == 16  # the default tier's base quota
    assert report.unclaimed[WORKSPACE_QUOTA] == 7 + 4
    # A second tick claims nothing more: the quotas are full while jobs are in flight.
    assert Dispatcher(app).tick(fence=0, redis_ok=True).claimed == 0


def test_a_paused_workspace_waits_and_resumes(app: Celery, engine: Engine) -> None:
    rt = runtime_of(app)
    with engine.begin() as conn:
        workspaces.update_settings(conn, "quiet", rt.now(), paused=True)
    fill(app, "quiet", 3)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert report.claimed == 0 and report.unclaimed == {WORKSPACE_PAUSED: 3}
    with engine.begin() as conn:
        workspaces.update_settings(conn, "quiet", rt.now(), paused=False)
    assert Dispatcher(app).tick(fence=0, redis_ok=True).claimed == 3


def test_without_redis_high_quota_workspaces_fall_back_to_base(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis, redis_url: str
) -> None:
    app = make_app(
        redis_url=DEAD_REDIS,
        broker_url=redis_url,
        global_capacity=100,
        autoscale_enabled=False,
        claim_batch=100,
        partition_cap=50,
    )
    rt = runtime_of(app)
    with engine.begin() as conn:
        workspaces.update_settings(conn, "vip", rt.now(), high_quota_enabled=True)
    fill(app, "vip", 20)
    summary = Dispatcher(app).run(BEAT)
    assert summary.claimed == 16
    (tick,) = summary.last_ticks
    assert tick.reason_code == "REDIS_UNAVAILABLE"
    assert tick.unclaimed == {LADDER_UNAVAILABLE: 4}
    # Kicks need Redis; without it only beat ticks run.
    assert Dispatcher(app).run(KICK).skipped == "REDIS_UNAVAILABLE"


def test_a_run_is_single_flight_and_reports_to_the_ledger(
    app: Celery, engine: Engine, redis_client: redis.Redis
) -> None:
    live = runtime_of(app).live
    fill(app, "acme", 3)
    holder = live.acquire_dispatch(10_000)
    assert Dispatcher(app).run(BEAT).skipped == "BUSY"
    assert holder is not None and live.release_dispatch(holder)
    summary = Dispatcher(app).run(BEAT)
    assert summary.claimed == 3 and summary.trigger == BEAT
    with engine.connect() as conn:
        (row,) = conn.execute(select(function_run_table)).all()
    assert row.status == "SUCCEEDED" and row.function == "dispatch"
    assert RunReport.from_dict(row.report) == summary and row.fence == summary.fence
    # The lease was released at the end of the run.
    assert live.acquire_dispatch(10_000) is not None


def test_a_beat_tick_fired_twice_runs_once(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(dispatch_interval_s=3600)  # both land in the same window
    fill(app, "acme", 2)
    assert Dispatcher(app).run(BEAT).claimed == 2
    assert Dispatcher(app).run(BEAT).skipped == "WINDOW_ALREADY_RAN"


def test_a_kick_with_nothing_new_does_not_tick(app: Celery) -> None:
    live = runtime_of(app).live
    assert Dispatcher(app).run(KICK).skipped == "NOTHING_NEW"
    live.kick(debounce_ms=1)
    assert Dispatcher(app).run(KICK).ticks >= 1


def test_concurrent_dispatchers_never_claim_or_send_twice(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(
        autoscale_enabled=False,
        global_capacity=1000,
        claim_batch=7,
        partition_cap=5,
        tier_quotas={"default": 100},
    )
    for w in range(6):
        fill(app, f"ws{w}", 20)
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            for _ in range(15):
                Dispatcher(app).tick(fence=0, redis_ok=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sent = run_messages(redis_client)
    assert len(sent) == len(set(sent)) == 120
    assert len({job_id for job_id, _ in sent}) == 120


def test_enqueue_refuses_past_the_pending_limit_with_a_retry_after(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(pending_limit=3, pending_retry_after_s=12)
    fill(app, "busy", 3)
    with pytest.raises(WorkspaceBacklogFull) as raised:
        enqueue("busy", "test.noop", {}, app=app)
    assert raised.value.retry_after_s == 12 and "retry after 12 s" in str(raised.value)
    assert sum(n for (w, _), n in statuses(engine).items() if w == "busy") == 3
    enqueue("other", "test.noop", {}, app=app)  # other workspaces are unaffected


def test_enqueue_counts_a_workspace_backlog_only_now_and_then(
    make_app: AppFactory, engine: Engine
) -> None:
    app = make_app(pending_limit=10_000)
    counted: list[str] = []

    def on_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "count(" in statement.lower() and "job.status" in statement:
            counted.append(statement)

    sql_engine = runtime_of(app).engine
    event.listen(sql_engine, "before_cursor_execute", on_statement)
    try:
        fill(app, "hot", 130)
    finally:
        event.remove(sql_engine, "before_cursor_execute", on_statement)
    # The first enqueue counts, then 64 may skip; the 66th counts, 64 skip again.
    assert len(counted) == 2
    assert sum(n for (w, _), n in statuses(engine).items() if w == "hot") == 130


def test_a_due_enqueue_kicks_the_dispatcher(app: Celery, redis_client: redis.Redis) -> None:
    live = runtime_of(app).live
    enqueue("acme", "test.noop", {}, app=app)
    assert live.kick_seq() == 1
    # A leading dispatch message now and a trailing one after the debounce window.
    assert len(redis_client.lrange("fairbeat.control", 0, -1)) == 2


def _redis_snapshot(client: redis.Redis) -> dict[object, object]:
    """fairbeat's lasting state (the test prefix, no expiring key), not the broker's queues."""
    keys = sorted(client.keys("fbtest:*"))
    return {key: client.dump(key) for key in keys if client.pttl(key) == -1}


def test_the_plan_writes_nothing_and_the_commit_applies_it(
    app: Celery, engine: Engine, redis_client: redis.Redis
) -> None:
    rt = runtime_of(app)
    for workspace in ("a", "b"):
        fill(app, workspace, 3)
    rt.control.save_autoscale_state({"capacity": 20})
    rt.control.set_capacity_override({"step": 4})
    before = (_redis_snapshot(redis_client), statuses(engine))
    dispatcher = Dispatcher(app)
    planned = dispatcher.plan_tick(redis_ok=True, now=rt.now())
    assert (_redis_snapshot(redis_client), statuses(engine)) == before
    assert planned.capacity.decision.capacity == 24
    assert planned.plan.allocations == {"a": 3, "b": 3}
    fence = rt.live.acquire_dispatch(10_000)
    assert fence is not None
    report = dispatcher.commit(planned, fence, redis_ok=True, run_id=None)
    assert report.claimed == report.sent == 6
    assert rt.control.capacity_override() == {}  # the one-shot step is used up by the commit
    assert rt.control.autoscale_state()["capacity"] == 24


def test_claims_stay_within_what_the_reported_fleet_can_start(
    make_app: AppFactory, engine: Engine, redis_client: redis.Redis
) -> None:
    app = make_app(fleet_claims_per_slot=2, autoscale_enabled=False, global_capacity=100)
    live = runtime_of(app).live
    live.publish_worker(WorkerSlots("w1@test", 2, ("jobs.default",)), ttl_ms=60_000)
    live.publish_worker(WorkerSlots("ctl@test", 5, ("fairbeat.control",)), ttl_ms=60_000)
    fill(app, "noisy", 30)
    fill(app, "small", 1)
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert (report.fleet_reason, report.fleet_slots, report.fleet_capacity) == (FLEET_SLOTS, 2, 4)
    assert report.claimed == 4 and statuses(engine)[("small", "CLAIMED")] == 1
    assert report.unclaimed[FLEET_SLOTS] == report.selected - 4 - report.unclaimed[PARTITION_CAP]
    # While those four are in flight the fleet has no room, whatever capacity says.
    assert Dispatcher(app).tick(fence=0, redis_ok=True).claimed == 0
    # A worker that stops reporting lapses: the bound falls back to one worker's worth.
    live.withdraw_worker("w1@test")
    assert live.worker_slots() == [WorkerSlots("ctl@test", 5, ("fairbeat.control",))]
    report = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert report.fleet_reason == FLEET_SLOTS_UNKNOWN


def test_a_failing_run_backs_off_instead_of_sending_itself_again(
    app: Celery, engine: Engine, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_of(app)
    fill(app, "acme", 2)
    redis_client.delete("fairbeat.control")  # the enqueue kicks' own messages

    def poisoned(*args: object) -> dict[str, int]:
        raise ValueError("timestamp too small")

    monkeypatch.setattr(selection, "due_by_workspace", poisoned)
    rt.live.kick(debounce_ms=1)  # an unseen kick, as a finishing job would leave
    with pytest.raises(ValueError):
        Dispatcher(app).run(KICK)
    # Then it did not send itself again, and kicks wait while it backs off
    assert redis_client.llen("fairbeat.control") == 0
    assert Dispatcher(app).run(KICK).skipped == "BACKING_OFF"
    with engine.connect() as conn:
        rows = conn.execute(select(function_run_table.c.status)).scalars().all()
    assert rows == ["FAILED"]
    # Beat keeps trying on its own schedule; once a run succeeds, kicks resume.
    monkeypatch.undo()
    assert Dispatcher(app).run(BEAT).claimed == 2
    assert not rt.live.backing_off()
    rt.live.kick(debounce_ms=1)
    assert Dispatcher(app).run(KICK).skipped is None


def test_every_lease_fenced_script_refuses_a_caller_that_does_not_hold_it(app: Celery) -> None:
    rt = runtime_of(app)
    fence = rt.live.acquire_dispatch(10_000)
    assert fence is not None
    stale = fence - 1
    assert not rt.live.renew_dispatch(stale, 10_000)
    assert not rt.live.release_dispatch(stale)
    assert not rt.live.save_fair_state(stale, FairState({"a": 0.5}))
    assert not rt.control.save_autoscale_state({"capacity": 1}, stale)
    assert rt.control.autoscale_state() == {} and rt.live.load_fair_state() == FairState()
    assert rt.live.save_fair_state(fence, FairState({"a": 0.5}))
    assert rt.control.save_autoscale_state({"capacity": 1}, fence)
    assert rt.live.renew_dispatch(fence, 10_000) and rt.live.release_dispatch(fence)
