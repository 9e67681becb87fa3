"""The gate, the ladder in Redis, autoscale, rate limits and borrowing, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select

from fairbeat.scheduling.reasons import GUARDRAIL_STEP_DOWN, RATE_LIMITED
from fairbeat.store import workspaces
from fairbeat.store.models import duplicate_event_table, gate_decision_table, job_table
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.gate import GateUnavailable, run_gate
from fairbeat.tasks.runtime import runtime_of
from tests.conftest import AppFactory

W0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def busy_window(engine: Engine, workspace: str, start: datetime, concurrent: int) -> None:
    """``concurrent`` jobs running side by side for ten minutes of the window, all succeeded."""
    rows = [
        {
            "workspace_id": workspace,
            "kind": "test.noop",
            "status": "SUCCEEDED",
            "run_at": start + timedelta(seconds=1),
            "started_at": start + timedelta(seconds=2),
            "finished_at": start + timedelta(minutes=10),
            "attempts": 1,
            "fence": 1,
            "created_at": start,
        }
        for _ in range(concurrent)
    ]
    with engine.begin() as conn:
        conn.execute(job_table.insert(), rows)


def high_quota(app: Celery, engine: Engine, workspace: str) -> None:
    with engine.begin() as conn:
        workspaces.update_settings(conn, workspace, runtime_of(app).now(), high_quota_enabled=True)


def reasons(report: dict[str, object]) -> dict[str, str]:
    return {d["workspace_id"]: d["reason_code"] for d in report["decisions"]}  # type: ignore[attr-defined]


def test_two_healthy_busy_windows_promote_and_the_dispatcher_uses_the_rung(
    app: Celery, engine: Engine
) -> None:
    high_quota(app, engine, "vip")
    for n in range(2):
        busy_window(engine, "vip", W0 + n * WINDOW, concurrent=16)
    first = run_gate(app, W0)
    assert reasons(first) == {"vip": "HOLD_HEALTHY_STREAK"}
    second = run_gate(app, W0 + WINDOW)
    assert reasons(second) == {"vip": "PROMOTED"}
    control = runtime_of(app).control
    assert control.ladder() == {"vip": 64}
    # The dispatcher now lets vip have 64 in flight.
    for _ in range(70):
        enqueue("vip", "test.noop", {}, app=app)
    with engine.connect() as conn:
        rows = conn.execute(select(gate_decision_table).order_by(gate_decision_table.c.id)).all()
    assert [(r.reason_code, r.from_quota, r.to_quota) for r in rows] == [
        ("HOLD_HEALTHY_STREAK", 16, 16),
        ("PROMOTED", 16, 64),
    ]
    assert rows[1].evidence["peak_in_flight"] == 16 and rows[1].evidence["breaches"] == []


def test_the_same_window_twice_changes_nothing(app: Celery, engine: Engine) -> None:
    high_quota(app, engine, "vip")
    busy_window(engine, "vip", W0, concurrent=16)
    run_gate(app, W0)
    control = runtime_of(app).control
    before = (control.ladder(), control.gate_states(["vip"]), control.last_window())
    again = run_gate(app, W0, manual=True)
    assert reasons(again) == {"vip": "ALREADY_EVALUATED"}
    assert (control.ladder(), control.gate_states(["vip"]), control.last_window()) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(gate_decision_table)).scalar() == 1


def test_a_duplicate_send_demotes_to_base_at_once(app: Celery, engine: Engine) -> None:
    high_quota(app, engine, "vip")
    control = runtime_of(app).control
    for n in range(2):
        busy_window(engine, "vip", W0 + n * WINDOW, concurrent=16)
        run_gate(app, W0 + n * WINDOW)
    assert control.ladder() == {"vip": 64}
    busy_window(engine, "vip", W0 + 2 * WINDOW, concurrent=64)
    with engine.begin() as conn:
        conn.execute(
            duplicate_event_table.insert().values(
                workspace_id="vip",
                job_id=1,
                fence=1,
                reason="EFFECT_RACED",
                created_at=W0 + 2 * WINDOW + timedelta(minutes=3),
            )
        )
    assert reasons(run_gate(app, W0 + 2 * WINDOW)) == {"vip": "DEMOTED_DUPLICATE_SEND"}
    assert control.ladder() == {}  # back to its tier base


def test_with_redis_down_the_gate_fails_loudly_and_writes_nothing(
    make_app: AppFactory, engine: Engine, redis_url: str
) -> None:
    app = make_app(redis_url="redis://127.0.0.1:1/0", broker_url=redis_url)
    high_quota(app, engine, "vip")
    busy_window(engine, "vip", W0, concurrent=16)
    with pytest.raises(GateUnavailable, match="unreachable"):
        run_gate(app, W0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(gate_decision_table)).scalar() == 0


def test_turning_promotion_off_holds_the_rung(app: Celery, engine: Engine) -> None:
    high_quota(app, engine, "vip")
    runtime_of(app).control.set_promotion(False)
    for n in range(2):
        busy_window(engine, "vip", W0 + n * WINDOW, concurrent=16)
        report = run_gate(app, W0 + n * WINDOW)
    assert reasons(report) == {"vip": "HOLD_PROMOTION_DISABLED"}
    assert runtime_of(app).control.ladder() == {}


def test_a_capacity_pin_holds_and_a_guardrail_steps_down(app: Celery) -> None:
    control = runtime_of(app).control
    for workspace in ("a", "b", "c"):
        for _ in range(10):
            enqueue(workspace, "test.noop", {}, app=app)
    control.set_capacity_override({"pin": 5})
    pinned = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert (pinned.capacity, pinned.capacity_reason) == (5, "OPERATOR_PIN")
    assert pinned.claimed == 5
    # Given the pin is gone and the failure rate is over its guardrail
    control.set_capacity_override(None)
    control.save_autoscale_state({"capacity": 24})
    control.save_health_signals({"failure_rate": 0.5})
    stepped = Dispatcher(app).tick(fence=0, redis_ok=True)
    # Then capacity steps down to three quarters, and what it holds is explained so
    assert (stepped.capacity, stepped.capacity_reason) == (18, "STEP_DOWN_ERROR_GUARDRAIL")
    assert stepped.claimed == 18 - 5
    assert stepped.unclaimed == {GUARDRAIL_STEP_DOWN: 25 - 13}


def test_a_rate_limit_holds_starts_to_its_rate(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(tier_rate_limits={"default": 2.0})
    for _ in range(10):
        enqueue("limited", "test.noop", {}, app=app)
    first = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert first.claimed == 2 and first.unclaimed[RATE_LIMITED] == 8
    again = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert again.claimed == 0  # the burst is spent; the next start is due in half a second


def test_borrowing_is_opt_in_and_bounded(make_app: AppFactory) -> None:
    app = make_app(borrow_limit=4, autoscale_enabled=False, global_capacity=100)
    for _ in range(30):
        enqueue("busy", "test.noop", {}, app=app)
    first = Dispatcher(app).tick(fence=0, redis_ok=True)
    second = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert first.claimed == 10  # the partition cap
    assert second.claimed == 10 and second.borrowed == {"busy": 4}


def test_an_operator_step_applies_once(app: Celery) -> None:
    control = runtime_of(app).control
    for workspace in ("a", "b", "c"):
        enqueue(workspace, "test.noop", {}, app=app)
    control.save_autoscale_state({"capacity": 20})
    control.set_capacity_override({"step": 8})
    first = Dispatcher(app).tick(fence=0, redis_ok=True)
    assert (first.capacity, first.capacity_reason) == (28, "OPERATOR_STEP")
    assert control.capacity_override() == {}  # used up
    assert Dispatcher(app).tick(fence=0, redis_ok=True).capacity_reason != "OPERATOR_STEP"
