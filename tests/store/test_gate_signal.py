"""A truthful duplicate-send signal, windows the gate refuses, and gate reset,
on both databases and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select

from fairbeat.scheduling import gate as policy
from fairbeat.scheduling.gate import GateState
from fairbeat.store import effects, transitions
from fairbeat.store.models import duplicate_event_table, function_run_table, gate_decision_table
from fairbeat.tasks.gate import WindowRefused, reset_state, run_gate
from fairbeat.tasks.health import snapshot
from fairbeat.tasks.runtime import runtime_of
from tests.store.test_control_loops import W0, WINDOW, busy_window, high_quota, reasons

NOISE = {
    effects.EFFECT_SUPPRESSED: 40,
    transitions.STALE_FENCE: 30,
    transitions.REPEATED_DELIVERY: 20,
    transitions.NOT_CLAIMED: 10,
}


def duplicate_rows(engine: Engine, workspace: str, at: datetime, counts: dict[str, int]) -> None:
    rows = [
        {"workspace_id": workspace, "job_id": n, "fence": 1, "reason": reason, "created_at": at}
        for reason, many in counts.items()
        for n in range(many)
    ]
    with engine.begin() as conn:
        conn.execute(duplicate_event_table.insert(), rows)


def promoted(app: Celery, engine: Engine) -> None:
    """vip on the first rung (64) after two healthy, busy windows."""
    high_quota(app, engine, "vip")
    for n in range(2):
        busy_window(engine, "vip", W0 + n * WINDOW, concurrent=16)
        run_gate(app, W0 + n * WINDOW)
    assert runtime_of(app).control.ladder() == {"vip": 64}


def evidence(engine: Engine, window: datetime) -> dict[str, object]:
    with engine.connect() as conn:
        found = conn.execute(
            select(gate_decision_table.c.evidence).where(
                gate_decision_table.c.window == window.isoformat()
            )
        ).scalar_one()
    return dict(found)


def test_every_reason_written_is_classified() -> None:
    written = {
        effects.EFFECT_SUPPRESSED,
        effects.EFFECT_RACED,
        transitions.STALE_FENCE,
        transitions.REPEATED_DELIVERY,
        transitions.NOT_CLAIMED,
    }
    known = policy.DUPLICATE_SEND_REASONS | policy.SUPPRESSED_REASONS | policy.DROPPED_REASONS
    assert written == known
    assert {effects.EFFECT_RACED} == policy.DUPLICATE_SEND_REASONS


def test_suppressed_effects_and_dropped_deliveries_never_demote(
    app: Celery, engine: Engine
) -> None:
    # Given a healthy workspace on the ladder, with every kind of caught duplicate
    promoted(app, engine)
    third = W0 + 2 * WINDOW
    busy_window(engine, "vip", third, concurrent=64)
    duplicate_rows(engine, "vip", third + timedelta(minutes=3), NOISE)
    # Then the gate keeps it (a healthy window with demand), and says what it saw
    assert reasons(run_gate(app, third)) == {"vip": "HOLD_HEALTHY_STREAK"}
    assert runtime_of(app).control.ladder() == {"vip": 64}
    seen = evidence(engine, third)
    assert seen["duplicates"] == 0
    assert seen["suppressed_effects"] == 40 and seen["dropped_deliveries"] == 60


def test_one_effect_that_ran_twice_demotes_at_once(app: Celery, engine: Engine) -> None:
    promoted(app, engine)
    third = W0 + 2 * WINDOW
    busy_window(engine, "vip", third, concurrent=64)
    duplicate_rows(engine, "vip", third + timedelta(minutes=3), {**NOISE, effects.EFFECT_RACED: 1})
    assert reasons(run_gate(app, third)) == {"vip": "DEMOTED_DUPLICATE_SEND"}
    assert runtime_of(app).control.ladder() == {}
    assert evidence(engine, third)["duplicates"] == 1


def test_status_counts_each_kind_apart(app: Celery, engine: Engine) -> None:
    rt = runtime_of(app)
    now = rt.now()
    duplicate_rows(engine, "vip", now - timedelta(minutes=1), {**NOISE, effects.EFFECT_RACED: 2})
    snap = snapshot(rt, now)
    assert snap["duplicate_signal"] == 2
    assert snap["suppressed_effects"] == 40 and snap["dropped_deliveries"] == 60


def nothing_written(app: Celery, engine: Engine) -> None:
    with engine.connect() as conn:
        for table in (function_run_table, gate_decision_table):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0
    control = runtime_of(app).control
    assert control.last_window() is None and control.ladder() == {}


def current_window(now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 900, UTC)


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (lambda now: current_window(now) + timedelta(days=30), policy.WINDOW_IN_FUTURE),
        (current_window, policy.WINDOW_NOT_FINISHED),
        (lambda now: W0 + timedelta(minutes=7), policy.WINDOW_NOT_ALIGNED),
    ],
    ids=["future", "unfinished", "unaligned"],
)
def test_a_window_that_cannot_be_evaluated_is_refused_and_nothing_written(
    app: Celery, engine: Engine, start: object, reason: str
) -> None:
    high_quota(app, engine, "vip")
    window = start(runtime_of(app).now())  # type: ignore[operator]
    with pytest.raises(WindowRefused, match=reason) as refused:
        run_gate(app, window, manual=True)
    assert refused.value.reason_code == reason
    assert "\n" not in str(refused.value)
    nothing_written(app, engine)


def test_a_window_given_in_another_zone_is_the_same_window(app: Celery, engine: Engine) -> None:
    high_quota(app, engine, "vip")
    busy_window(engine, "vip", W0, concurrent=16)
    elsewhere = W0.astimezone(timezone(timedelta(hours=2)))
    assert run_gate(app, elsewhere)["window"] == W0.isoformat()
    assert reasons(run_gate(app, W0, manual=True)) == {"vip": "ALREADY_EVALUATED"}


def test_reset_unfreezes_a_gate_written_for_the_future(app: Celery, engine: Engine) -> None:
    # Given a gate frozen by a window far ahead, written before windows were checked
    promoted(app, engine)
    control = runtime_of(app).control
    future = "2099-01-01T00:00:00+00:00"
    frozen = GateState(rung=0, healthy_streak=1, last_window=future)
    assert control.write_ladder(future, {"vip": (64, frozen)})
    third = W0 + 2 * WINDOW
    busy_window(engine, "vip", third, concurrent=64)
    assert reasons(run_gate(app, third)) == {"vip": "ALREADY_EVALUATED"}
    # When the operator resets vip's gate state
    result = reset_state(runtime_of(app), "vip")
    assert result["window_marker_dropped"] is True
    assert result["before"]["vip"]["last_window"] == future
    # Then its rung is kept, its streaks and marker cleared, and the gate evaluates again
    assert control.gate_states(["vip"])["vip"] == GateState(rung=0)
    assert control.last_window() is None
    assert reasons(run_gate(app, third, manual=True)) == {"vip": "HOLD_HEALTHY_STREAK"}
    assert control.ladder() == {"vip": 64}


def test_resetting_one_workspace_keeps_a_finished_marker_and_the_others(
    app: Celery, engine: Engine
) -> None:
    promoted(app, engine)
    high_quota(app, engine, "other")
    control = runtime_of(app).control
    marker = control.last_window()
    before_other = control.gate_states(["other"])
    result = reset_state(runtime_of(app), "vip")
    assert result["reset"] == ["vip"] and result["window_marker_dropped"] is False
    assert control.last_window() == marker
    assert control.gate_states(["other"]) == before_other
    # Without a workspace, every one is reset and the marker dropped
    assert reset_state(runtime_of(app), None)["window_marker_dropped"] is True
    assert control.last_window() is None
