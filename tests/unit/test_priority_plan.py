"""The tick's plan across priority classes: bounds, quotas across classes,
no starvation over ticks, and determinism."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.fair import FairState, WorkspaceDemand
from fairbeat.scheduling.priority import ClassPlan, class_budgets, class_of, plan_classes
from fairbeat.scheduling.reasons import CLASS_BUDGET, GLOBAL_CAPACITY

CLASSES = ("critical", "default", "bulk")
WORKSPACES = ("a", "b", "c", "d")

due_by_class = st.fixed_dictionaries(
    {c: st.dictionaries(st.sampled_from(WORKSPACES), st.integers(1, 60)) for c in CLASSES}
)
demands = st.fixed_dictionaries(
    {w: st.tuples(st.integers(0, 12), st.integers(0, 16)) for w in WORKSPACES}
)  # workspace -> (in flight, quota)


def _plan(
    due: Mapping[str, Mapping[str, int]],
    profile: Mapping[str, tuple[int, int]],
    capacity: int,
    batch: int,
    share: float,
    state: FairState | None = None,
    borrow: int = 0,
) -> ClassPlan:
    ds = [WorkspaceDemand(w, 0, inf, q) for w, (inf, q) in profile.items()]
    return plan_classes(
        CLASSES,
        ds,
        due,
        capacity=capacity,
        in_flight_total=sum(inf for inf, _ in profile.values()),
        batch=batch,
        partition_cap=50,
        state=state or FairState(),
        min_share=share,
        borrow_limit=borrow,
    )


@given(
    due_by_class, demands, st.integers(0, 80), st.integers(1, 40), st.sampled_from([0, 0.1, 0.5])
)
def test_never_over_capacity_batch_or_any_quota_across_classes(
    due: dict[str, dict[str, int]],
    profile: dict[str, tuple[int, int]],
    capacity: int,
    batch: int,
    share: float,
) -> None:
    result = _plan(due, profile, capacity, batch, share)
    total = sum(result.plan.allocations.values())
    in_flight = sum(inf for inf, _ in profile.values())
    assert total <= min(batch, max(0, capacity - in_flight))
    for w, (inf, quota) in profile.items():
        assert result.plan.allocations.get(w, 0) <= max(0, quota - inf)
    for c in CLASSES:
        for w, n in result.allocations.get(c, {}).items():
            assert n <= due[c][w]
    # Per class and all together, the per-class allocations are the plan.
    summed: Counter[str] = Counter()
    for per_ws in result.allocations.values():
        summed.update(per_ws)
    assert dict(+summed) == dict(result.plan.allocations)
    assert result == _plan(due, profile, capacity, batch, share)  # deterministic


@given(due_by_class, st.integers(1, 30), st.integers(0, 4))
def test_a_borrow_limit_holds_across_classes(
    due: dict[str, dict[str, int]], quota: int, borrow: int
) -> None:
    profile = {w: (0, quota) for w in WORKSPACES}
    result = _plan(due, profile, 10_000, 10_000, 0.1, borrow=borrow)
    for w in WORKSPACES:
        assert result.plan.allocations.get(w, 0) <= quota + borrow


@given(st.integers(1, 4), st.sampled_from([0.05, 0.1, 0.25]))
def test_no_lower_class_or_workspace_starves_under_a_critical_flood(
    room: int, share: float
) -> None:
    """Two workspaces per lower class, a flood above them; jobs finish within the tick."""
    due = {
        "critical": {"a": 10_000},
        "default": {"b": 10_000, "c": 10_000},
        "bulk": {"c": 10_000, "d": 10_000},
    }
    profile = {w: (0, 100) for w in WORKSPACES}
    served: Counter[tuple[str, str]] = Counter()
    state = FairState()
    lower = len(CLASSES) - 1
    ticks = (int(1 / share) + 1) * lower * 2 + lower
    for _ in range(ticks):
        result = _plan(due, profile, room, room, share, state)
        state = result.plan.state
        for c, per_ws in result.allocations.items():
            served.update({(c, w): n for w, n in per_ws.items()})
    for c, per_ws in due.items():
        for w in per_ws:
            assert served[(c, w)] >= 1, (c, w, dict(served))
    # The flood's class still gets the larger part of the room over time.
    total = sum(served.values())
    assert served[("critical", "a")] >= (1 - lower * share) * total - lower * (room + 1)


def test_a_saturated_fleet_serves_critical_first_though_rooms_are_small() -> None:
    """A room of one per tick (a slot frees as a job finishes): critical takes it
    but one tick in ten, the bulk class's tenth."""
    due = {"critical": {"a": 1000}, "bulk": {"b": 1000}}
    profile = {w: (0, 100) for w in ("a", "b")}
    state = FairState()
    got: Counter[str] = Counter()
    for _ in range(100):
        result = _plan(due, profile, 1, 1, 0.1, state)
        state = result.plan.state
        got.update({c: sum(n.values()) for c, n in result.allocations.items()})
    assert got["bulk"] in range(9, 12)
    assert got["critical"] == 100 - got["bulk"]


def test_what_waits_for_another_class_is_counted_as_class_budget() -> None:
    due = {"critical": {"a": 50}, "bulk": {"b": 50}}
    profile = {w: (0, 100) for w in ("a", "b")}
    result = _plan(due, profile, 10, 10, 0.1)
    assert result.allocations == {"critical": {"a": 9}, "bulk": {"b": 1}}
    # Critical waits on the room kept for bulk; bulk, past its share, on capacity.
    assert result.plan.unclaimed == {CLASS_BUDGET: 41, GLOBAL_CAPACITY: 49}
    assert result.plan.evidence["class_budgets"] == {"critical": 9, "default": 0, "bulk": 1}


def test_a_quota_held_class_leaves_its_budget_to_the_class_below() -> None:
    """Workspace a's quota is full: its critical jobs cannot start, so bulk gets the room."""
    due = {"critical": {"a": 50}, "bulk": {"b": 50}}
    profile = {"a": (4, 4), "b": (0, 100)}
    result = _plan(due, profile, 100, 10, 0.1)
    assert result.allocations["bulk"] == {"b": 10}


def test_a_stored_class_no_longer_configured_counts_as_default() -> None:
    assert class_of("legacy", CLASSES) == "default"
    assert class_of("bulk", CLASSES) == "bulk"


@given(
    st.fixed_dictionaries({c: st.integers(0, 50) for c in CLASSES}),
    st.integers(0, 30),
    st.sampled_from([0.1, 0.3]),
    st.integers(0, 5),
    st.dictionaries(st.sampled_from(CLASSES[1:]), st.floats(0, 3)),
)
def test_earned_budgets_stay_within_room_and_due(
    due: dict[str, int], room: int, share: float, turn: int, credit: dict[str, float]
) -> None:
    plan = class_budgets(CLASSES, due, room, share, turn, credit)
    assert sum(plan.budgets.values()) == min(room, sum(due.values()))
    assert all(0 <= plan.budgets[c] <= due[c] for c in CLASSES)
    assert all(0 <= v <= share * room + 1.0 for v in plan.credit.values())
    assert plan == class_budgets(CLASSES, due, room, share, turn, credit)


def test_the_simulation_shows_critical_waiting_less_with_classes_deterministically() -> None:
    from fairbeat.scheduling.classsim import ClassScenario, compare_classes

    sc = ClassScenario(flood=600, duration_s=4.0)
    results = compare_classes(sc)
    assert results == compare_classes(sc)
    assert results["classes"].p95_wait_s["critical"] < results["off"].p95_wait_s["critical"]
    assert results["classes"].starts["bulk"] > 0  # the flood still runs
