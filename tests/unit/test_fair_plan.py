"""Properties of the fair plan: bounds, conservation, determinism, fairness over time."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.scheduling.fair import NO_DUE_JOBS, FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.reasons import (
    CLAIM_BATCH,
    GLOBAL_CAPACITY,
    LADDER_UNAVAILABLE,
    PARTITION_CAP,
    RATE_LIMITED,
    RECLAIMED,
    WORKSPACE_PAUSED,
    WORKSPACE_QUOTA,
)

workspace_ids = st.text(alphabet="abcdefghij", min_size=1, max_size=3)
demands = st.lists(
    st.builds(
        WorkspaceDemand,
        workspace_id=workspace_ids,
        due=st.integers(0, 60),
        in_flight=st.integers(0, 40),
        quota=st.integers(0, 40),
        weight=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
        paused=st.booleans(),
        ladder_fallback=st.booleans(),
        rate_allowance=st.none() | st.integers(0, 20),
    ),
    max_size=12,
    unique_by=lambda d: d.workspace_id,
)
states = st.builds(
    FairState,
    deficits=st.dictionaries(workspace_ids, st.floats(0, 4)),
    cursor=st.none() | workspace_ids,
    resume=st.booleans(),
)
limits = st.fixed_dictionaries(
    {
        "capacity": st.integers(0, 200),
        "in_flight_total": st.integers(0, 200),
        "batch": st.integers(1, 50),
        "partition_cap": st.integers(1, 30),
        "borrow_limit": st.sampled_from([0, 0, 4, 16]),
    }
)
Limits = dict[str, Any]


@given(demands, states, limits)
def test_never_over_quota_cap_capacity_or_batch(
    ds: list[WorkspaceDemand], state: FairState, lim: Limits
) -> None:
    plan = plan_fair(ds, state=state, **lim)
    by_id = {d.workspace_id: d for d in ds}
    for workspace, n in plan.allocations.items():
        d = by_id[workspace]
        assert 0 < n <= min(d.due, lim["partition_cap"])
        assert d.rate_allowance is None or n <= d.rate_allowance
        assert not d.paused
        above = plan.borrowed.get(workspace, 0)
        assert d.in_flight + n - above <= d.quota  # beyond quota only what it borrowed
        assert above <= lim["borrow_limit"]
    total = sum(plan.allocations.values())
    assert total <= lim["batch"]
    assert total <= max(0, lim["capacity"] - lim["in_flight_total"])
    assert Counter(plan.order) == Counter(plan.allocations)


@given(demands, states, limits)
def test_every_due_job_is_claimed_or_explained(
    ds: list[WorkspaceDemand], state: FairState, lim: Limits
) -> None:
    plan = plan_fair(ds, state=state, **lim)
    assert sum(plan.allocations.values()) + sum(plan.unclaimed.values()) == sum(d.due for d in ds)
    assert all(n > 0 for n in plan.unclaimed.values())


@given(demands, states, limits)
def test_work_conserving_within_a_tick(
    ds: list[WorkspaceDemand], state: FairState, lim: Limits
) -> None:
    # Left capacity or batch unused only when no workspace could take more.
    plan = plan_fair(ds, state=state, **lim)
    room = min(lim["batch"], max(0, lim["capacity"] - lim["in_flight_total"]))
    if sum(plan.allocations.values()) < room:
        assert plan.unclaimed.get(GLOBAL_CAPACITY, 0) == 0
        assert plan.unclaimed.get(CLAIM_BATCH, 0) == 0


@given(demands, states, limits, st.randoms())
def test_deterministic_whatever_the_input_order(
    ds: list[WorkspaceDemand], state: FairState, lim: Limits, rnd: object
) -> None:
    shuffled = list(ds)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert plan_fair(ds, state=state, **lim) == plan_fair(shuffled, state=state, **lim)


@settings(max_examples=60)
@given(
    n=st.integers(2, 40),
    room=st.integers(1, 12),
    weights=st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=40, max_size=40),
)
def test_no_backlogged_workspace_starves_across_ticks(
    n: int, room: int, weights: list[float]
) -> None:
    # Given n workspaces that always have more due jobs than one tick can take
    names = [f"ws{i:02d}" for i in range(n)]
    state = FairState()
    last_served = dict.fromkeys(names, 0)
    longest_wait = 0
    # A DRR round serves sum(weights) jobs; each workspace once per round.
    bound = math.ceil(sum(weights[:n]) / room) + 1
    for tick in range(1, 6 * bound):
        ds = [
            WorkspaceDemand(w, due=100, in_flight=0, quota=100, weight=weights[i])
            for i, w in enumerate(names)
        ]
        plan = plan_fair(
            ds, capacity=room, in_flight_total=0, batch=room, partition_cap=50, state=state
        )
        state = plan.state
        for w in plan.allocations:
            last_served[w] = tick
        longest_wait = max(longest_wait, max(tick - t for t in last_served.values()))
    # Then every one is served at least once a round
    assert longest_wait <= bound


def test_shares_follow_weights_over_time() -> None:
    weights = {"enterprise": 2.0, "small-a": 1.0, "small-b": 1.0}
    state = FairState()
    served: Counter[str] = Counter()
    for _ in range(400):
        ds = [
            WorkspaceDemand(w, due=50, in_flight=0, quota=50, weight=x) for w, x in weights.items()
        ]
        plan = plan_fair(ds, capacity=3, in_flight_total=0, batch=3, partition_cap=20, state=state)
        state = plan.state
        served.update(plan.allocations)
    total = sum(served.values())
    assert abs(served["enterprise"] / total - 0.5) < 0.02
    assert abs(served["small-a"] / total - 0.25) < 0.02


def test_a_small_workspace_is_not_behind_a_hot_backlog() -> None:
    # Given a hot workspace with thousands due and a small one with two
    ds = [
        WorkspaceDemand("hot", due=5000, in_flight=0, quota=64),
        WorkspaceDemand("small", due=2, in_flight=0, quota=16),
    ]
    plan = plan_fair(
        ds, capacity=8, in_flight_total=0, batch=8, partition_cap=10, state=FairState()
    )
    # Then both of the small one's jobs go out in this very tick, interleaved early
    assert plan.allocations["small"] == 2
    assert plan.order.index("small") <= 1


def test_reasons_name_what_held_each_job() -> None:
    ds = [
        WorkspaceDemand("paused", due=3, in_flight=0, quota=16, paused=True),
        WorkspaceDemand("full", due=4, in_flight=16, quota=16),
        WorkspaceDemand("fallback", due=5, in_flight=16, quota=16, ladder_fallback=True),
        WorkspaceDemand("capped", due=30, in_flight=0, quota=100),
    ]
    plan = plan_fair(
        ds, capacity=100, in_flight_total=32, batch=50, partition_cap=10, state=FairState()
    )
    assert plan.allocations == {"capped": 10}
    assert plan.unclaimed == {
        WORKSPACE_PAUSED: 3,
        WORKSPACE_QUOTA: 4,
        LADDER_UNAVAILABLE: 5,
        PARTITION_CAP: 20,
    }


def test_capacity_versus_batch_is_told_apart() -> None:
    ds = [WorkspaceDemand("a", due=10, in_flight=0, quota=16)]
    by_capacity = plan_fair(
        ds, capacity=4, in_flight_total=0, batch=20, partition_cap=10, state=FairState()
    )
    by_batch = plan_fair(
        ds, capacity=100, in_flight_total=0, batch=4, partition_cap=10, state=FairState()
    )
    assert by_capacity.unclaimed == {GLOBAL_CAPACITY: 6}
    assert by_batch.unclaimed == {CLAIM_BATCH: 6}


def test_nothing_due() -> None:
    plan = plan_fair(
        [], capacity=10, in_flight_total=0, batch=5, partition_cap=5, state=FairState()
    )
    assert plan.reason_code == NO_DUE_JOBS and plan.allocations == {}


def test_a_rate_limit_holds_jobs_as_rate_limited() -> None:
    ds = [WorkspaceDemand("limited", due=10, in_flight=0, quota=16, rate_allowance=3)]
    plan = plan_fair(
        ds, capacity=100, in_flight_total=0, batch=50, partition_cap=20, state=FairState()
    )
    assert plan.allocations == {"limited": 3} and plan.unclaimed == {RATE_LIMITED: 7}


def test_idle_capacity_is_borrowed_then_reclaimed() -> None:
    # Given one busy workspace at its quota and nobody else waiting
    alone = [WorkspaceDemand("busy", due=30, in_flight=16, quota=16)]
    plan = plan_fair(
        alone,
        capacity=100,
        in_flight_total=16,
        batch=50,
        partition_cap=20,
        state=FairState(),
        borrow_limit=8,
    )
    # Then it borrows up to the bound while capacity would idle
    assert plan.allocations == {"busy": 8} and plan.borrowed == {"busy": 8}
    assert plan.unclaimed == {WORKSPACE_QUOTA: 12, PARTITION_CAP: 10}
    # When another workspace has demand, the borrower gets nothing more: reclaimed
    both = [
        WorkspaceDemand("busy", due=30, in_flight=24, quota=16),
        WorkspaceDemand("small", due=2, in_flight=0, quota=16),
    ]
    plan = plan_fair(
        both,
        capacity=26,
        in_flight_total=24,
        batch=50,
        partition_cap=20,
        state=FairState(),
        borrow_limit=8,
    )
    assert plan.allocations == {"small": 2} and plan.borrowed == {}
    assert plan.unclaimed == {RECLAIMED: 20, PARTITION_CAP: 10}


def test_no_borrowing_unless_enabled() -> None:
    alone = [WorkspaceDemand("busy", due=30, in_flight=16, quota=16)]
    plan = plan_fair(
        alone, capacity=100, in_flight_total=16, batch=50, partition_cap=20, state=FairState()
    )
    assert plan.allocations == {} and plan.borrowed == {}
