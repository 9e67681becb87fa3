"""Priority classes across workspaces: budgets per class, bounds, and no starvation."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.priority import class_budgets

CLASSES = ("critical", "default", "bulk")
dues = st.fixed_dictionaries({c: st.integers(0, 200) for c in CLASSES})
rooms = st.integers(0, 64)
shares = st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5])


@given(dues, rooms, shares, st.integers(0, 10))
def test_budgets_stay_within_room_and_due_and_use_all_they_can(
    due: dict[str, int], room: int, share: float, turn: int
) -> None:
    plan = class_budgets(CLASSES, due, room, share, turn)
    assert sum(plan.budgets.values()) <= room
    assert all(0 <= plan.budgets[c] <= due[c] for c in CLASSES)
    # Work conserving: room is left only when every class took all it had due.
    assert sum(plan.budgets.values()) == min(room, sum(due.values()))
    assert plan == class_budgets(CLASSES, due, room, share, turn)  # deterministic


@given(dues, st.integers(1, 64), shares.filter(lambda s: s > 0), st.integers(0, 10))
def test_a_lower_class_with_due_jobs_keeps_its_minimum_share(
    due: dict[str, int], room: int, share: float, turn: int
) -> None:
    plan = class_budgets(CLASSES, due, room, share, turn)
    per_class = math.ceil(share * room)
    if per_class * 2 <= room:  # all the reserves fit
        for c in CLASSES[1:]:
            assert plan.budgets[c] >= min(due[c], per_class)


@given(st.integers(1, 3), shares.filter(lambda s: s > 0))
def test_under_a_flood_no_lower_class_starves_over_consecutive_ticks(
    room: int, share: float
) -> None:
    due = {"critical": 10_000, "default": 10_000, "bulk": 10_000}
    served = {c: 0 for c in CLASSES}
    for turn in range(len(CLASSES) - 1):
        for c, n in class_budgets(CLASSES, due, room, share, turn).budgets.items():
            served[c] += n
    assert all(served[c] >= 1 for c in CLASSES[1:])


@given(dues, st.integers(1, 32), st.integers(0, 8))
def test_higher_classes_go_first_and_quotas_hold_across_classes(
    due: dict[str, int], room: int, quota: int
) -> None:
    plan = class_budgets(CLASSES, due, room, 0.1)
    # Without lower-class reserves, critical takes all it can.
    if due["default"] == 0 and due["bulk"] == 0:
        assert plan.budgets["critical"] == min(room, due["critical"])
    # One workspace's classes planned in order, each counting what the ones
    # above took as in flight: together they never pass its quota.
    taken = 0
    for c in CLASSES:
        demand = WorkspaceDemand("w", due[c], taken, quota)
        fair = plan_fair(
            [demand],
            capacity=10_000,
            in_flight_total=taken,
            batch=max(1, plan.budgets[c]),
            partition_cap=1000,
            state=FairState(),
        )
        taken += fair.allocations.get("w", 0) if plan.budgets[c] else 0
    assert taken <= quota
