"""A workspace's own limits, whatever a row holds: usable, or held with the reason."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling import ratelimit
from fairbeat.scheduling.fair import MIN_WEIGHT, FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.limits import (
    MAX_RATE_PER_S,
    MAX_WEIGHT,
    MIN_RATE_PER_S,
    check_limits,
    rate_limit_problem,
    weight_problem,
)
from fairbeat.scheduling.reasons import BACKPRESSURE, WORKSPACE_MISCONFIGURED

ANY_NUMBER = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 5e-324, 1e308]),
)


def test_usable_limits_pass_unchanged() -> None:
    limits = check_limits(2.5, 10.0)
    assert (limits.weight, limits.rate_limit_per_s, limits.reason_code) == (2.5, 10.0, None)
    assert check_limits(1.0, None).rate_limit_per_s is None
    assert check_limits(1.0, 0.0).rate_limit_per_s is None  # 0: no limit of its own


def test_an_unusable_value_holds_the_workspace_naming_it() -> None:
    limits = check_limits(float("nan"), float("inf"))
    assert limits.reason_code == WORKSPACE_MISCONFIGURED
    assert set(limits.evidence) == {"weight", "rate_limit_per_s"}
    assert "nan" in limits.evidence["weight"] and "inf" in limits.evidence["rate_limit_per_s"]
    assert (limits.weight, limits.rate_limit_per_s) == (1.0, None)
    assert WORKSPACE_MISCONFIGURED in BACKPRESSURE


@given(weight=ANY_NUMBER, rate=st.none() | ANY_NUMBER)
def test_whatever_the_row_holds_the_limits_handed_on_are_safe(
    weight: float, rate: float | None
) -> None:
    limits = check_limits(weight, rate)
    assert MIN_WEIGHT <= limits.weight <= MAX_WEIGHT
    r = limits.rate_limit_per_s
    assert r is None or MIN_RATE_PER_S <= r <= MAX_RATE_PER_S
    assert (limits.reason_code is None) == (
        weight_problem(weight) is None and (rate is None or rate_limit_problem(rate) is None)
    )


@given(
    weight=ANY_NUMBER,
    rate=st.none() | ANY_NUMBER,
    tat=st.none() | st.floats(),
    now_s=st.floats(min_value=0, max_value=4e9),
)
def test_a_tick_planned_with_any_row_never_raises_and_explains_every_job(
    weight: float, rate: float | None, tat: float | None, now_s: float
) -> None:
    # What the dispatcher does with a workspace's row: check it, rate-limit it, plan it.
    limits = check_limits(weight, rate)
    allowance = None
    if limits.rate_limit_per_s is not None:
        burst = ratelimit.burst_for(limits.rate_limit_per_s)
        allowance = ratelimit.available(
            now_s=now_s, tat_s=tat, rate_per_s=limits.rate_limit_per_s, burst=burst
        )
        after = ratelimit.consume(
            now_s=now_s, tat_s=tat, rate_per_s=limits.rate_limit_per_s, n=allowance
        )
        assert math.isfinite(after)
    demands = [
        WorkspaceDemand(
            "odd",
            5,
            0,
            16,
            limits.weight,
            misconfigured=limits.reason_code is not None,
            rate_allowance=allowance,
        ),
        WorkspaceDemand("innocent", 1, 0, 16),
    ]
    plan = plan_fair(
        demands, capacity=32, in_flight_total=0, batch=20, partition_cap=10, state=FairState()
    )
    assert plan.allocations.get("innocent") == 1
    assert sum(plan.allocations.values()) + sum(plan.unclaimed.values()) == 6
    if limits.reason_code:
        assert plan.unclaimed == {WORKSPACE_MISCONFIGURED: 5}


@given(tat=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_a_tat_that_is_not_a_number_restarts_the_schedule(tat: float) -> None:
    assert ratelimit.available(now_s=100.0, tat_s=tat, rate_per_s=2.0, burst=2) == 2
    assert ratelimit.consume(now_s=100.0, tat_s=tat, rate_per_s=2.0, n=2) == 101.0
