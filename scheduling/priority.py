"""Priority classes across workspaces: how a tick's claims split between classes.

Classes are ordered, highest first (e.g. critical, default, bulk). A higher
class is served first across all workspaces, but every lower class that has
due jobs keeps a guaranteed minimum share of the tick's room (``min_share``
of it, rounded up, at most what it can start), so no class starves. What a
class leaves unused goes to the classes below it. Within a class the fair
plan (``plan_fair``) shares its budget between workspaces; each workspace's
quota holds across classes because what higher classes took counts as in
flight when a lower class is planned.

``plan_classes`` is the whole tick (tasks/dispatch.py calls it when more than
one class has PENDING jobs): the budgets from what each class can start (not
merely what it has due, so a reserve is not kept for jobs a quota holds),
then one ``plan_fair`` per class, highest first, each with its own carried
state (``FairState.by_class``): a class's rotation never moves another's.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairbeat.scheduling.fair import (
    NO_DUE_JOBS,
    PLANNED,
    FairPlan,
    FairState,
    WorkspaceDemand,
    plan_fair,
)
from fairbeat.scheduling.reasons import CLAIM_BATCH, CLASS_BUDGET, GLOBAL_CAPACITY

CLASS_BUDGETS = "CLASS_BUDGETS"
NO_ROOM = "NO_ROOM"
DEFAULT_CLASS = "default"


def class_of(stored: str, classes: Sequence[str]) -> str:
    """The configured class a stored name counts as: itself, or ``default`` for a
    name no longer configured (such a job must not wait for ever)."""
    return stored if stored in classes else DEFAULT_CLASS


@dataclass(frozen=True)
class ClassBudgets:
    budgets: Mapping[str, int]  # class -> most claims it may take this tick
    reserved: Mapping[str, int]  # class -> the share guaranteed to it
    reason_code: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    credit: Mapping[str, float] = field(default_factory=dict)  # to carry (with ``credit``)


def _rotated(lower: list[str], turn: int) -> list[str]:
    start = turn % len(lower) if lower else 0
    return lower[start:] + lower[:start]


def _reserves(
    classes: Sequence[str], due: Mapping[str, int], room: int, min_share: float, turn: int
) -> dict[str, int]:
    """Each lower class's guaranteed share. When they cannot all fit (a room of
    one, say), ``turn`` rotates which come first, so over as many ticks as there
    are lower classes each gets its turn."""
    per_class = math.ceil(min_share * room) if min_share > 0 else 0
    reserved: dict[str, int] = {}
    left = room
    for name in _rotated(list(classes[1:]), turn):
        take = min(per_class, max(0, due.get(name, 0)), left)
        if take:
            reserved[name] = take
            left -= take
    return reserved


def _earned_reserves(
    classes: Sequence[str],
    due: Mapping[str, int],
    room: int,
    min_share: float,
    turn: int,
    credit: Mapping[str, float],
) -> tuple[dict[str, int], dict[str, float]]:
    """Reserves from carried credit: each tick a lower class with due jobs earns
    ``min_share * room`` and is guaranteed one claim per whole unit. Rounding up
    every tick instead would hand a lower class the whole of each small room
    (a saturated fleet frees a slot or two per tick) and starve the classes
    above it. A class first seen with due jobs starts with one claim's credit;
    credit is never banked while a class has nothing due."""
    earn = min_share * room
    reserved: dict[str, int] = {}
    carried: dict[str, float] = {}
    left = room
    for name in _rotated(list(classes[1:]), turn):
        wanted = max(0, due.get(name, 0))
        if not wanted or earn <= 0:
            continue
        have = credit.get(name, 0.0) + earn
        if name not in credit:
            have = max(have, 1.0)
        take = min(int(have + 1e-9), wanted, left)
        if take:
            reserved[name] = take
            left -= take
        carried[name] = min(have - take, earn + 1.0)
    return reserved, carried


def class_budgets(
    classes: Sequence[str],
    due: Mapping[str, int],
    room: int,
    min_share: float,
    turn: int = 0,
    credit: Mapping[str, float] | None = None,
) -> ClassBudgets:
    """Split ``room`` claims between ``classes`` (highest first) given each one's due
    jobs; ``turn`` is any counter that advances by one per tick (deterministic).

    Without ``credit`` each lower class's reserve is ``min_share`` of this tick,
    rounded up; with the credit the last tick returned, ``min_share`` of the
    room over time (see :func:`_earned_reserves`)."""
    room = max(0, room)
    carried: dict[str, float] = {}
    if credit is None:
        reserved = _reserves(classes, due, room, min_share, turn)
    else:
        reserved, carried = _earned_reserves(classes, due, room, min_share, turn, credit)
    budgets: dict[str, int] = {}
    left = room
    for i, name in enumerate(classes):
        below = sum(reserved.get(lower, 0) for lower in classes[i + 1 :])
        wanted = max(0, due.get(name, 0))
        take = min(wanted, max(reserved.get(name, 0), left - below), left)
        budgets[name] = take
        left -= take
    return ClassBudgets(
        budgets=budgets,
        reserved=reserved,
        reason_code=CLASS_BUDGETS if room else NO_ROOM,
        evidence={"room": room, "min_share": min_share, "left": left},
        credit=carried,
    )


@dataclass(frozen=True)
class ClassPlan:
    plan: FairPlan  # the tick's plan, per workspace, all classes together
    allocations: Mapping[str, Mapping[str, int]]  # class -> workspace -> jobs to claim
    budgets: ClassBudgets


def startable(d: WorkspaceDemand, due: int, partition_cap: int, borrow_limit: int) -> int:
    """How many of ``due`` the workspace could start this tick with no other class."""
    if d.paused or d.misconfigured:
        return 0
    n = min(max(0, due), partition_cap)
    if d.rate_allowance is not None:
        n = min(n, max(0, d.rate_allowance))
    return min(n, max(0, d.quota + borrow_limit - d.in_flight))


def _class_demands(
    due: Mapping[str, int], by_id: Mapping[str, WorkspaceDemand], taken: Counter[str]
) -> list[WorkspaceDemand]:
    """The workspaces' demands in one class: what higher classes took is in flight."""
    out = []
    for workspace, n in sorted(due.items()):
        d, t = by_id[workspace], taken[workspace]
        rate = None if d.rate_allowance is None else max(0, d.rate_allowance - t)
        out.append(dataclasses.replace(d, due=n, in_flight=d.in_flight + t, rate_allowance=rate))
    return out


def plan_classes(
    classes: Sequence[str],
    demands: Sequence[WorkspaceDemand],
    due_by_class: Mapping[str, Mapping[str, int]],
    *,
    capacity: int,
    in_flight_total: int,
    batch: int,
    partition_cap: int,
    state: FairState,
    min_share: float,
    quantum: float = 1.0,
    borrow_limit: int = 0,
    capacity_reason: str = GLOBAL_CAPACITY,
) -> ClassPlan:
    """The tick's plan across ``classes`` (highest first); ``demands`` are per
    workspace (quota, weight, in flight, ...), ``due_by_class`` class ->
    workspace -> due jobs. The partition cap applies per workspace and class."""
    by_id = {d.workspace_id: d for d in demands}
    room = min(batch, max(0, capacity - in_flight_total))
    can = {
        c: sum(
            startable(by_id[w], n, partition_cap, borrow_limit)
            for w, n in due_by_class.get(c, {}).items()
        )
        for c in classes
    }
    budgets = class_budgets(classes, can, room, min_share, state.turn, state.class_credit)
    taken: Counter[str] = Counter()
    unclaimed: Counter[str] = Counter()
    borrowed: Counter[str] = Counter()
    allocations: dict[str, dict[str, int]] = {}
    order: list[str] = []
    states = dict(state.by_class)
    carry = 0
    for c in classes:
        due = due_by_class.get(c, {})
        if not due:
            continue
        budget = budgets.budgets.get(c, 0) + carry
        plan = plan_fair(
            _class_demands(due, by_id, taken),
            capacity=capacity,
            in_flight_total=in_flight_total + sum(taken.values()),
            batch=budget,
            partition_cap=partition_cap,
            state=states.get(c, FairState()),
            quantum=quantum,
            borrow_limit=borrow_limit,
            capacity_reason=capacity_reason,
        )
        states[c] = plan.state
        got = sum(plan.allocations.values())
        carry = budget - got
        taken.update(plan.allocations)
        borrowed.update(plan.borrowed)
        order.extend(plan.order)
        allocations[c] = dict(plan.allocations)
        for reason, n in plan.unclaimed.items():
            # Below the tick's room, the batch that held them was the class's budget.
            unclaimed[CLASS_BUDGET if reason == CLAIM_BATCH and budget < room else reason] += n
    return ClassPlan(
        plan=FairPlan(
            allocations=dict(taken),
            order=tuple(order),
            state=dataclasses.replace(
                state, turn=state.turn + 1, by_class=states, class_credit=budgets.credit
            ),
            unclaimed=dict(unclaimed),
            reason_code=_reason(due_by_class, order),
            evidence={
                "capacity": capacity,
                "in_flight": in_flight_total,
                "room": room,
                "workspaces_due": len({w for due in due_by_class.values() for w in due}),
                "workspaces_served": len(taken),
                "class_budgets": dict(budgets.budgets),
                "class_reserved": dict(budgets.reserved),
            },
            borrowed=dict(borrowed),
        ),
        allocations=allocations,
        budgets=budgets,
    )


def _reason(due_by_class: Mapping[str, Mapping[str, int]], order: list[str]) -> str:
    if not any(n for due in due_by_class.values() for n in due.values()):
        return NO_DUE_JOBS
    return PLANNED if order else NO_ROOM
