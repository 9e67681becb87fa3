"""The fair plan: how many due jobs each workspace gets claimed in this tick.

Deficit round robin (Shreedhar and Varghese) across workspaces, weighted by
tier: each visit adds ``quantum * weight`` credit, and a workspace takes one
job per whole unit of credit. Two things carry over to the next tick, so
fairness holds over time and not only within one tick:

- each backlogged workspace's unspent credit (bounded by one visit's worth),
- the cursor: the next tick's round starts after the last workspace served,
  so when capacity runs out mid-round the rest of the round goes first next
  time instead of the alphabet's front always winning. When capacity ran out
  in the middle of a workspace's turn, the next tick resumes that turn first,
  with the credit it has left and no new quantum.

Within the plan a workspace takes at most ``min(partition cap, free quota)``
jobs, and all of them together at most the free global capacity and the
claim batch. Every due job left unclaimed is counted under one reason code.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairbeat.scheduling.reasons import (
    CLAIM_BATCH,
    FLEET_SLOTS,
    GLOBAL_CAPACITY,
    GUARDRAIL_STEP_DOWN,
    LADDER_UNAVAILABLE,
    PARTITION_CAP,
    RATE_LIMITED,
    RECLAIMED,
    WORKSPACE_MISCONFIGURED,
    WORKSPACE_PAUSED,
    WORKSPACE_QUOTA,
)

PLANNED = "PLANNED"
NO_DUE_JOBS = "NO_DUE_JOBS"
NO_ROOM = "NO_ROOM"  # due jobs exist, but capacity or every quota is used up

MIN_WEIGHT = 0.1  # bounds the rounds a tick can take before anyone earns a job


@dataclass(frozen=True)
class WorkspaceDemand:
    workspace_id: str
    due: int  # due jobs seen this tick; more than the cap means "at least that many"
    in_flight: int
    quota: int
    weight: float = 1.0
    paused: bool = False
    ladder_fallback: bool = False
    rate_allowance: int | None = None  # starts its rate limit allows now; None: no limit
    misconfigured: bool = False  # its own limits are unusable (scheduling.limits): held
    # Credit one job costs: 1 counts jobs; with the time model (scheduling/cost.py)
    # the job's estimated run time over the costliest due workspace's, in (0, 1].
    cost: float = 1.0


@dataclass(frozen=True)
class FairState:
    deficits: Mapping[str, float] = field(default_factory=dict)
    cursor: str | None = None
    resume: bool = False  # the cursor's turn was cut short: start with it, no new credit
    # Priority classes (scheduling/priority.py): a tick with several classes plans
    # each with its own state, kept here, and counts its ticks for the rotation of
    # the classes' reserves, and the credit toward each lower class's minimum
    # share. plan_fair itself neither reads nor keeps these.
    turn: int = 0
    by_class: Mapping[str, FairState] = field(default_factory=dict)
    class_credit: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FairPlan:
    allocations: Mapping[str, int]  # workspace -> jobs to claim now
    order: tuple[str, ...]  # one entry per job, in fair interleaved order
    state: FairState  # to carry into the next tick
    unclaimed: Mapping[str, int]  # reason code -> due jobs left
    reason_code: str
    evidence: Mapping[str, Any]
    borrowed: Mapping[str, int] = field(default_factory=dict)  # above quota, capacity idle


@dataclass
class _Entry:
    demand: WorkspaceDemand
    allowance: int
    deficit: float
    taken: int = 0
    quota_held: int = 0  # due jobs held only by the quota: what borrowing may take


def _allowance(d: WorkspaceDemand, cap: int, unclaimed: dict[str, int]) -> tuple[int, int]:
    """(how many this workspace may take, how many only its quota holds back),
    counting the rest under their reasons."""
    seen = min(d.due, cap)
    if d.due > cap:
        unclaimed[PARTITION_CAP] += d.due - cap
    if d.paused:
        unclaimed[WORKSPACE_PAUSED] += seen
        return 0, 0
    if d.misconfigured:
        unclaimed[WORKSPACE_MISCONFIGURED] += seen
        return 0, 0
    rate = seen if d.rate_allowance is None else min(seen, max(0, d.rate_allowance))
    unclaimed[RATE_LIMITED] += seen - rate
    allowance = min(rate, max(0, d.quota - d.in_flight))
    if d.ladder_fallback:
        held = LADDER_UNAVAILABLE
    elif d.in_flight > d.quota:
        held = RECLAIMED  # it is on borrowed slots: they go back first
    else:
        held = WORKSPACE_QUOTA
    unclaimed[held] += rate - allowance
    return allowance, (rate - allowance if held == WORKSPACE_QUOTA else 0)


def _rotation(ids: Sequence[str], state: FairState) -> list[str]:
    """``ids`` (sorted) starting after the cursor, or at it when its turn resumes."""
    if state.cursor is None:
        return list(ids)
    bisector = bisect.bisect_left if state.resume else bisect.bisect_right
    start = bisector(ids, state.cursor)
    return [*ids[start:], *ids[:start]]


def _run_rounds(
    entries: list[_Entry], room: int, quantum: float, resume: str | None
) -> tuple[list[str], FairState | None]:
    """Visit workspaces round by round until the room or the demand runs out.

    Returns the fair order and, when a turn was cut short, where to resume.
    """
    order: list[str] = []
    cut: FairState | None = None
    active = [e for e in entries if e.allowance > 0]
    while room > 0 and active:
        for entry in active:
            workspace = entry.demand.workspace_id
            if workspace == resume:
                resume = None  # the resumed turn spends its remaining credit first
            else:
                entry.deficit += quantum * max(MIN_WEIGHT, entry.demand.weight)
            cost = entry.demand.cost
            take = min(int(entry.deficit / cost + 1e-9), entry.allowance - entry.taken, room)
            entry.taken += take
            entry.deficit -= take * cost
            room -= take
            order.extend([workspace] * take)
            if take:
                cut = FairState(cursor=workspace)
            if room == 0:
                # More is due: resume the turn even if its allowance ran out at the
                # same moment, or a cheap, heavy workspace loses its credit each tick.
                if entry.deficit >= cost and entry.taken < entry.demand.due:
                    cut = FairState(cursor=workspace, resume=True)
                break
        active = [e for e in active if e.taken < e.allowance]
    return order, cut


def plan_fair(
    demands: Sequence[WorkspaceDemand],
    *,
    capacity: int,
    in_flight_total: int,
    batch: int,
    partition_cap: int,
    state: FairState,
    quantum: float = 1.0,
    borrow_limit: int = 0,
    capacity_reason: str = GLOBAL_CAPACITY,
) -> FairPlan:
    """``borrow_limit`` > 0 lets a workspace at its quota take up to that many more
    while capacity would otherwise idle. ``capacity_reason`` names what holds jobs
    back when capacity runs out (GUARDRAIL_STEP_DOWN after a guardrail, FLEET_SLOTS
    when the live workers' slots bound it)."""
    unclaimed = dict.fromkeys(
        (
            GLOBAL_CAPACITY,
            FLEET_SLOTS,
            GUARDRAIL_STEP_DOWN,
            CLAIM_BATCH,
            WORKSPACE_QUOTA,
            PARTITION_CAP,
            WORKSPACE_PAUSED,
            WORKSPACE_MISCONFIGURED,
            LADDER_UNAVAILABLE,
            RATE_LIMITED,
            RECLAIMED,
        ),
        0,
    )
    by_id = {d.workspace_id: d for d in demands}
    ids = sorted(by_id)
    entries = []
    for w in _rotation(ids, state):
        allowance, quota_held = _allowance(by_id[w], partition_cap, unclaimed)
        entries.append(_Entry(by_id[w], allowance, state.deficits.get(w, 0.0), 0, quota_held))
    free_capacity = max(0, capacity - in_flight_total)
    room = min(batch, free_capacity)
    order, cut = _run_rounds(entries, room, quantum, state.cursor if state.resume else None)
    left = sum(e.allowance - e.taken for e in entries)
    unclaimed[capacity_reason if free_capacity <= batch else CLAIM_BATCH] += left
    borrowed = _borrow(entries, room - len(order), borrow_limit, order)
    unclaimed[WORKSPACE_QUOTA] -= sum(borrowed.values())
    allocations = {e.demand.workspace_id: e.taken for e in entries if e.taken}
    return FairPlan(
        allocations=allocations,
        order=tuple(order),
        state=_next_state(entries, quantum, cut or state),
        unclaimed={reason: n for reason, n in unclaimed.items() if n},
        reason_code=_reason(demands, order),
        borrowed=borrowed,
        evidence={
            "capacity": capacity,
            "in_flight": in_flight_total,
            "room": room,
            "workspaces_due": len(demands),
            "workspaces_served": len(allocations),
            "cursor_before": state.cursor,
        },
    )


def _borrow(entries: list[_Entry], room: int, limit: int, order: list[str]) -> dict[str, int]:
    """Work conserving: slots no one else could use go to workspaces held only by
    quota, up to ``limit`` above it each, in the same rotation. Every other
    workspace's demand was met already, or there would be no room left."""
    borrowed: dict[str, int] = {}
    for entry in entries:
        if room <= 0 or limit <= 0:
            break
        d = entry.demand
        already = max(0, d.in_flight + entry.taken - d.quota)
        take = min(entry.quota_held, limit - already, room)
        if take > 0:
            entry.taken += take
            room -= take
            order.extend([d.workspace_id] * take)
            borrowed[d.workspace_id] = take
    return borrowed


def _next_state(entries: list[_Entry], quantum: float, where: FairState) -> FairState:
    """Credit carries only for workspaces still backlogged, bounded by one visit's worth."""
    deficits = {}
    for e in entries:
        still_due = e.demand.due - e.taken > 0
        if still_due and e.deficit > 0:
            deficits[e.demand.workspace_id] = min(
                e.deficit, quantum * max(MIN_WEIGHT, e.demand.weight)
            )
    return FairState(deficits=deficits, cursor=where.cursor, resume=where.resume)


def _reason(demands: Sequence[WorkspaceDemand], order: list[str]) -> str:
    if not any(d.due for d in demands):
        return NO_DUE_JOBS
    return PLANNED if order else NO_ROOM
