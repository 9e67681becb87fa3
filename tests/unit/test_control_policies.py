"""Properties of the autoscale decision and the promotion gate."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling import autoscale as a
from fairbeat.scheduling import gate as g

policy = a.AutoscalePolicy()
inputs = st.builds(
    a.AutoscaleInputs,
    now_s=st.floats(0, 10_000),
    previous=st.integers(1, 1000),
    active_workspaces=st.integers(0, 200),
    due_backlog=st.integers(0, 100_000),
    in_flight=st.integers(0, 1000),
    error_rate=st.none() | st.floats(0, 1),
    contention=st.none() | st.floats(0, 1),
    last_step_down_s=st.none() | st.floats(0, 10_000),
    override=st.builds(a.Override, pin=st.none(), step=st.none() | st.integers(-50, 50)),
)


@given(inputs)
def test_capacity_stays_within_bounds_unless_pinned(i: a.AutoscaleInputs) -> None:
    decision = a.decide_capacity(i, policy, worker_concurrency=4)
    low, high = a.bounds(policy, i.active_workspaces)
    assert low <= decision.capacity <= max(high, min(i.previous, high))
    assert decision.desired_workers >= 1
    assert decision == a.decide_capacity(i, policy, worker_concurrency=4)  # deterministic


@given(inputs)
def test_ramp_up_is_one_bounded_stage(i: a.AutoscaleInputs) -> None:
    decision = a.decide_capacity(i, policy, worker_concurrency=4)
    if decision.reason_code == a.RAMP_UP_BACKLOG:
        assert 0 < decision.capacity - i.previous <= policy.ramp_max_step


@given(inputs, st.integers(1, 2000))
def test_a_pin_wins_over_everything(i: a.AutoscaleInputs, pin: int) -> None:
    decision = a.decide_capacity(replace(i, override=a.Override(pin=pin)), policy, 4)
    assert (decision.capacity, decision.reason_code) == (pin, a.OPERATOR_PIN)


@given(inputs)
def test_a_guardrail_breach_never_raises_capacity(i: a.AutoscaleInputs) -> None:
    breached = replace(i, error_rate=0.5, override=a.Override())
    decision = a.decide_capacity(breached, policy, 4)
    assert decision.reason_code in {a.STEP_DOWN_ERROR_GUARDRAIL, a.HOLD_COOLDOWN}
    assert decision.capacity <= max(i.previous, policy.min_capacity)


def test_step_down_then_cooldown_then_ramp() -> None:
    base = a.AutoscaleInputs(
        now_s=0, previous=100, active_workspaces=50, due_backlog=500, in_flight=100, error_rate=0.2
    )
    down = a.decide_capacity(base, policy, 4)
    assert (down.capacity, down.reason_code) == (75, a.STEP_DOWN_ERROR_GUARDRAIL)
    healthy = replace(base, previous=75, error_rate=0.0, in_flight=75, last_step_down_s=0)
    assert a.decide_capacity(replace(healthy, now_s=30), policy, 4).reason_code == a.HOLD_COOLDOWN
    up = a.decide_capacity(replace(healthy, now_s=61), policy, 4)
    assert (up.capacity, up.reason_code) == (94, a.RAMP_UP_BACKLOG)


def test_idle_steps_down_to_the_floor() -> None:
    idle = a.AutoscaleInputs(now_s=0, previous=12, active_workspaces=1, due_backlog=0, in_flight=0)
    first = a.decide_capacity(idle, policy, 4)
    assert (first.capacity, first.reason_code) == (8, a.STEP_DOWN_IDLE)
    assert a.decide_capacity(replace(idle, previous=8), policy, 4).reason_code == a.HOLD


gpolicy = g.GatePolicy()
healthy = g.WindowMetrics(
    jobs=500, queue_age_p95_s=10, failure_rate=0.0, contention=0.0, duplicates=0, peak_in_flight=100
)
metrics = st.builds(
    g.WindowMetrics,
    jobs=st.integers(0, 1000),
    queue_age_p95_s=st.none() | st.floats(0, 1000),
    failure_rate=st.none() | st.floats(0, 1),
    contention=st.none() | st.floats(0, 1),
    duplicates=st.integers(0, 3),
    peak_in_flight=st.integers(0, 200),
)
states = st.builds(
    g.GateState,
    rung=st.integers(-1, 1),
    healthy_streak=st.integers(0, 3),
    breach_streak=st.integers(0, 3),
    last_window=st.none(),
)


def run_gate(
    m: g.WindowMetrics,
    s: g.GateState,
    window: str = "w1",
    enabled: bool = True,
    promotion: bool = True,
) -> g.GateVerdict:
    return g.decide_gate(
        workspace_id="acme",
        window=window,
        high_quota_enabled=enabled,
        promotion_enabled=promotion,
        base_quota=16,
        metrics=m,
        state=s,
        policy=gpolicy,
    )


@given(metrics, states)
def test_the_gate_is_deterministic_and_moves_at_most_one_rung_up(
    m: g.WindowMetrics, s: g.GateState
) -> None:
    v = run_gate(m, s)
    assert v == run_gate(m, s)
    assert v.state.rung <= s.rung + 1
    if v.reason_code != g.DEMOTED_DUPLICATE_SEND:
        assert v.state.rung >= s.rung - 1


@given(metrics, states)
def test_a_duplicate_breach_always_demotes_to_base(m: g.WindowMetrics, s: g.GateState) -> None:
    v = run_gate(replace(m, duplicates=1), s)
    assert v.reason_code == g.DEMOTED_DUPLICATE_SEND and v.state.rung == g.BASE_RUNG
    assert v.to_quota == 16


@given(metrics, states)
def test_no_promotion_without_the_healthy_windows(m: g.WindowMetrics, s: g.GateState) -> None:
    v = run_gate(m, replace(s, healthy_streak=0))
    assert v.reason_code != g.PROMOTED  # one window is never enough


def test_two_healthy_windows_with_demand_promote_one_rung_each() -> None:
    s = g.GateState()
    first = run_gate(replace(healthy, peak_in_flight=16), s, "w1")
    assert first.reason_code == g.HOLD_HEALTHY_STREAK
    second = run_gate(replace(healthy, peak_in_flight=16), first.state, "w2")
    assert (second.reason_code, second.to_quota) == (g.PROMOTED, 64)
    assert run_gate(healthy, second.state, "w3").reason_code == g.HOLD_HEALTHY_STREAK
    top = run_gate(healthy, run_gate(healthy, second.state, "w3").state, "w4")
    assert (top.reason_code, top.to_quota) == (g.PROMOTED, 100)
    assert (
        run_gate(healthy, replace(top.state, healthy_streak=1), "w5").reason_code == g.AT_TOP_RUNG
    )


def test_two_breach_windows_demote_one_rung() -> None:
    slow = replace(healthy, queue_age_p95_s=900)
    first = run_gate(slow, g.GateState(rung=1), "w1")
    second = run_gate(slow, first.state, "w2")
    assert first.reason_code == g.HOLD_BREACH_STREAK
    assert (second.reason_code, second.from_quota, second.to_quota) == (
        g.DEMOTED_SUSTAINED_BREACH,
        100,
        64,
    )


def test_no_demand_breaks_the_streak_and_switches_hold() -> None:
    idle = replace(healthy, peak_in_flight=3)
    v = run_gate(idle, g.GateState(healthy_streak=1), "w2")
    assert v.reason_code == g.HOLD_NO_DEMAND and v.state.healthy_streak == 0
    assert (
        run_gate(healthy, g.GateState(healthy_streak=1), "w2", promotion=False).reason_code
        == g.HOLD_PROMOTION_DISABLED
    )
    assert run_gate(healthy, g.GateState(rung=1), "w2", enabled=False).to_quota == 16


def test_the_same_window_twice_changes_nothing() -> None:
    first = run_gate(healthy, g.GateState(healthy_streak=1), "w7")
    again = run_gate(healthy, first.state, "w7")
    assert again.reason_code == g.ALREADY_EVALUATED and again.state == first.state
