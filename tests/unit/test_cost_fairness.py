"""Fairness by worker time: the cost model's bounds, determinism and shares over many ticks."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.scheduling.cost import (
    COST_BY_COUNT,
    COST_DEFAULTED,
    COST_ESTIMATED,
    MIN_COST,
    ewma,
    plan_costs,
    settle,
)
from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.fairsim import CostScenario, compare, simulate_costs

workspace_ids = st.text(alphabet="abcdefgh", min_size=1, max_size=2)
run_times = st.floats(0.001, 120.0)
costed = st.lists(
    st.tuples(
        workspace_ids,
        st.integers(0, 60),  # due
        st.integers(0, 20),  # in flight
        st.integers(0, 20),  # quota
        st.sampled_from([1.0, 2.0, 4.0]),  # weight
        st.none() | run_times,  # estimate; None: never seen finish
    ),
    max_size=10,
    unique_by=lambda t: t[0],
)
limits = st.fixed_dictionaries(
    {
        "capacity": st.integers(0, 100),
        "in_flight_total": st.integers(0, 100),
        "batch": st.integers(1, 50),
        "partition_cap": st.integers(1, 30),
    }
)


def _plan(rows: list[Any], lim: dict[str, int], state: FairState) -> tuple[Any, Any]:
    estimates = {r[0]: r[5] for r in rows if r[5] is not None}
    costs = plan_costs("time", sorted(r[0] for r in rows), estimates, 1.0)
    ds = [WorkspaceDemand(r[0], r[1], r[2], r[3], r[4], cost=costs.costs[r[0]]) for r in rows]
    plan = plan_fair(
        ds,
        capacity=lim["capacity"],
        in_flight_total=lim["in_flight_total"],
        batch=lim["batch"],
        partition_cap=lim["partition_cap"],
        state=state,
    )
    return plan, ds


@given(costed, limits)
def test_time_plan_never_over_quota_capacity_or_batch(rows: list[Any], lim: dict[str, int]) -> None:
    plan, ds = _plan(rows, lim, FairState())
    total = sum(plan.allocations.values())
    assert total <= lim["batch"]
    assert total <= max(0, lim["capacity"] - lim["in_flight_total"])
    for d in ds:
        taken = plan.allocations.get(d.workspace_id, 0)
        assert taken <= max(0, d.quota - d.in_flight)
        assert taken <= min(d.due, lim["partition_cap"])


@given(costed, limits)
def test_time_plan_is_deterministic(rows: list[Any], lim: dict[str, int]) -> None:
    assert _plan(rows, lim, FairState())[0] == _plan(list(reversed(rows)), lim, FairState())[0]


@given(st.lists(workspace_ids, unique=True, max_size=8), st.dictionaries(workspace_ids, run_times))
def test_costs_lie_in_min_to_one(ids: list[str], estimates: dict[str, float]) -> None:
    plan = plan_costs("time", ids, estimates, 1.0)
    assert set(plan.costs) == set(ids)
    assert all(MIN_COST <= c <= 1.0 for c in plan.costs.values())
    if ids:
        assert plan.reason_code in (COST_ESTIMATED, COST_DEFAULTED, COST_BY_COUNT)
        assert (plan.reason_code == COST_DEFAULTED) == any(w not in estimates for w in ids)


def test_count_mode_costs_one_and_settle_changes_nothing() -> None:
    plan = plan_costs("count", ["a", "b"], {"a": 5.0}, 1.0)
    assert plan.costs == {"a": 1.0, "b": 1.0} and plan.reason_code == COST_BY_COUNT
    state = FairState({"a": 0.5})
    assert settle(state, plan, {"a": 3}, {"a": 99.0}) is state


def test_settle_charges_the_claimed_kinds_own_estimates() -> None:
    plan = plan_costs("time", ["a", "b"], {"a": 1.0, "b": 4.0}, 1.0)  # a costs 0.25
    # a took 2 jobs planned at 0.25 each, but they were of a 2 s kind: 0.5 each.
    state = settle(FairState({"a": 0.6}), plan, {"a": 2}, {"a": 4.0})
    assert abs(state.deficits["a"] - 0.1) < 1e-9


@given(st.none() | run_times, st.lists(run_times, min_size=1, max_size=50))
def test_ewma_stays_within_the_samples_seen(old: float | None, samples: list[float]) -> None:
    estimate = old
    for s in samples:
        estimate = ewma(estimate, s, 0.2)
    assert estimate is not None
    seen = samples + ([old] if old is not None else [])
    assert min(seen) - 1e-9 <= estimate <= max(seen) + 1e-9


job_times = st.lists(st.sampled_from([0.005, 0.01, 0.02, 0.04, 0.08]), min_size=2, max_size=4)


@settings(max_examples=12, deadline=None)
@given(job_times, st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=4, max_size=4))
def test_backlogged_workspaces_get_worker_seconds_in_proportion_to_weight(
    times: list[float], weights: list[float]
) -> None:
    ids = [f"w{i}" for i in range(len(times))]
    weight = dict(zip(ids, weights, strict=False))
    sc = CostScenario(
        job_s=dict(zip(ids, times, strict=True)),
        weights=weight,
        slots=4,
        quota=4,
        duration_s=6.0,
        window_s=2.0,
    )
    result = simulate_costs(sc, "time")
    shares = [result.worker_s[w] / sc.weights[w] for w in ids]  # type: ignore[index]
    assert min(shares) >= 0.8 * max(shares), result.worker_s


def test_the_cost_scenario_time_model_beats_count() -> None:
    both = compare(CostScenario({"a": 0.005, "b": 0.02, "c": 0.08}, duration_s=10.0))
    assert both["time"].time_jain >= 0.95
    assert both["count"].time_jain < 0.7  # count gives the 80 ms workspace 16x the 5 ms one's
    assert both["count"].count_jain >= 0.95


def test_fairbeat_simulate_fairness_shows_both_policies(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from fairbeat.cli import cli

    png = tmp_path / "fair.png"
    result = CliRunner().invoke(cli, ["simulate", "--fairness", "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["time"]["time_jain"] >= 0.95 > data["count"]["time_jain"]
    assert png.stat().st_size > 0
