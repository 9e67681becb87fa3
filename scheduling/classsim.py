"""A small discrete simulation of priority classes under a bulk flood.

One workspace floods the bulk class; others add critical and default jobs at a
steady pace. Worker slots are shared; a tick every ``tick_s`` plans with the
real policies and starts the planned jobs, which finish ``job_s`` later. Each
policy is run on the same arrivals:

- ``classes``: ``plan_classes`` with the configured minimum share;
- ``strict``: the same with no minimum share (a lower class may starve);
- ``off``: every job in one class, ``plan_fair`` alone (as before classes).

Deterministic: no clock, no I/O.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.priority import plan_classes

CLASSES = ("critical", "default", "bulk")
POLICIES = ("classes", "strict", "off")


@dataclass(frozen=True)
class ClassScenario:
    flood: int = 2000  # bulk jobs at t=0, spread over ``flooders`` workspaces
    flooders: int = 10
    # workspace -> (class, seconds between its bursts, jobs per burst)
    streams: Mapping[str, tuple[str, float, int]] = field(
        default_factory=lambda: {"urgent": ("critical", 2.0, 16), "everyday": ("default", 0.5, 1)}
    )
    slots: int = 8
    quota: int = 16  # per workspace
    job_s: float = 0.05
    tick_s: float = 0.01
    duration_s: float = 10.0
    min_share: float = 0.1


@dataclass(frozen=True)
class ClassResult:
    policy: str
    starts: Mapping[str, int]  # class -> jobs started
    p95_wait_s: Mapping[str, float]  # class -> p95 of enqueue-to-start
    max_wait_s: Mapping[str, float]
    reason_code: str = "SIMULATED"


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _arrivals(sc: ClassScenario, step: int) -> list[tuple[str, str]]:
    out = [(f"flood-{n % sc.flooders}", "bulk") for n in range(sc.flood)] if step == 0 else []
    for workspace, (name, every, burst) in sorted(sc.streams.items()):
        period = max(1, round(every / sc.tick_s))
        if step % period == period // 2:  # mid-period: the flood is under way
            out.extend([(workspace, name)] * burst)
    return out


def _plan(
    policy: str,
    sc: ClassScenario,
    queues: Mapping[tuple[str, str], deque[float]],
    in_flight: Mapping[str, int],
    state: FairState,
) -> tuple[dict[tuple[str, str], int], FairState]:
    due: dict[str, dict[str, int]] = defaultdict(dict)
    for (workspace, name), q in queues.items():
        if q:
            due["default" if policy == "off" else name][workspace] = len(q)
    workspaces = sorted({w for per in due.values() for w in per})
    demands = [
        WorkspaceDemand(w, sum(d.get(w, 0) for d in due.values()), in_flight[w], sc.quota)
        for w in workspaces
    ]
    busy = sum(in_flight.values())
    if policy == "off":
        plan = plan_fair(
            demands,
            capacity=sc.slots,
            in_flight_total=busy,
            batch=sc.slots,
            partition_cap=10_000,
            state=state,
        )
        # One class: take each workspace's own queues oldest first.
        return _oldest_first(plan.allocations, queues), plan.state
    share = sc.min_share if policy == "classes" else 0.0
    split = plan_classes(
        CLASSES,
        demands,
        due,
        capacity=sc.slots,
        in_flight_total=busy,
        batch=sc.slots,
        partition_cap=10_000,
        state=state,
        min_share=share,
    )
    out = {(w, c): n for c, per in split.allocations.items() for w, n in per.items()}
    return out, split.plan.state


def _oldest_first(
    allocations: Mapping[str, int], queues: Mapping[tuple[str, str], deque[float]]
) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for workspace, n in allocations.items():
        mine = sorted(k for k in queues if k[0] == workspace and queues[k])
        taken = {k: 0 for k in mine}
        for _ in range(n):
            k = min(
                (k for k in mine if len(queues[k]) > taken[k]), key=lambda k: queues[k][taken[k]]
            )
            taken[k] += 1
        for k, t in taken.items():
            if t:
                out[k] += t
    return dict(out)


def simulate_classes(sc: ClassScenario, policy: str) -> ClassResult:
    """Run ``sc`` under ``policy`` (one of POLICIES)."""
    queues: dict[tuple[str, str], deque[float]] = defaultdict(deque)
    in_flight: dict[str, int] = defaultdict(int)
    running: list[tuple[float, str]] = []
    waits: dict[str, list[float]] = defaultdict(list)
    state = FairState()
    for step in range(int(sc.duration_s / sc.tick_s)):
        now = step * sc.tick_s
        while running and running[0][0] <= now + 1e-9:
            _, workspace = heapq.heappop(running)
            in_flight[workspace] -= 1
        for workspace, name in _arrivals(sc, step):
            queues[(workspace, name)].append(now)
        for w, _ in list(queues):
            in_flight.setdefault(w, 0)
        planned, state = _plan(policy, sc, queues, in_flight, state)
        for (workspace, name), n in sorted(planned.items()):
            for _ in range(n):
                waits[name].append(now - queues[(workspace, name)].popleft())
                in_flight[workspace] += 1
                heapq.heappush(running, (now + sc.job_s, workspace))
    return ClassResult(
        policy=policy,
        starts={c: len(waits[c]) for c in CLASSES},
        p95_wait_s={c: round(_p95(waits[c]), 3) for c in CLASSES},
        max_wait_s={c: round(max(waits[c], default=0.0), 3) for c in CLASSES},
    )


def compare_classes(sc: ClassScenario) -> dict[str, ClassResult]:
    return {policy: simulate_classes(sc, policy) for policy in POLICIES}
