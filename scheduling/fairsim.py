"""A small discrete simulation of the fair plan by count and by worker time.

Backlogged workspaces whose jobs take different times share a fixed number of
worker slots; a tick every ``tick_s`` plans with ``plan_fair`` (the real
policy) and starts the planned jobs. In ``"time"`` mode the costs come from
run-time estimates learned from finished jobs (``ewma``), starting from the
default, as the dispatcher learns them. Deterministic: no clock, no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from fairbeat.scheduling.cost import COUNT, TIME, ewma, plan_costs, settle
from fairbeat.scheduling.fair import FairState, WorkspaceDemand, plan_fair
from fairbeat.scheduling.stats import jain_index


@dataclass(frozen=True)
class CostScenario:
    job_s: Mapping[str, float]  # workspace -> how long each of its jobs takes
    weights: Mapping[str, float] | None = None  # tier weights; None: all 1
    slots: int = 4
    quota: int = 4  # per workspace
    tick_s: float = 0.005  # a divisor of the job times keeps slots busy between ticks
    duration_s: float = 30.0
    window_s: float = 1.0
    default_s: float = 0.05
    alpha: float = 0.2


@dataclass(frozen=True)
class CostResult:
    mode: str
    time_jain: float  # mean over windows of Jain's index of weight-normalised worker seconds
    count_jain: float  # the same over job starts
    worker_s: Mapping[str, float]  # workspace -> worker seconds over the run
    jobs: Mapping[str, int]
    windows: tuple[Mapping[str, float], ...]  # per window: workspace -> worker seconds
    reason_code: str = "SIMULATED"


def _weight(sc: CostScenario, w: str) -> float:
    return 1.0 if sc.weights is None else sc.weights.get(w, 1.0)


def simulate_costs(sc: CostScenario, mode: str) -> CostResult:
    """Run ``sc`` under ``mode`` ("count" or "time")."""
    ids = sorted(sc.job_s)
    running: list[tuple[float, str]] = []  # (finish time, workspace)
    in_flight = dict.fromkeys(ids, 0)
    estimates: dict[str, float] = {}
    state = FairState()
    n_windows = int(sc.duration_s / sc.window_s)
    busy = [dict.fromkeys(ids, 0.0) for _ in range(n_windows)]
    starts = [dict.fromkeys(ids, 0) for _ in range(n_windows)]
    for step in range(int(sc.duration_s / sc.tick_s)):
        now = step * sc.tick_s
        while running and running[0][0] <= now + 1e-12:
            _, w = heapq.heappop(running)
            in_flight[w] -= 1
            estimates[w] = ewma(estimates.get(w), sc.job_s[w], sc.alpha)
        costs = plan_costs(mode, ids, estimates, sc.default_s)
        demands = [
            WorkspaceDemand(
                w, 1000, in_flight[w], sc.quota, weight=_weight(sc, w), cost=costs.costs[w]
            )
            for w in ids
        ]
        plan = plan_fair(
            demands,
            capacity=sc.slots,
            in_flight_total=len(running),
            batch=sc.slots,
            partition_cap=1000,
            state=state,
        )
        charged = {w: n * estimates.get(w, sc.default_s) for w, n in plan.allocations.items()}
        state = settle(plan.state, costs, plan.allocations, charged)
        for w in plan.order:
            in_flight[w] += 1
            heapq.heappush(running, (now + sc.job_s[w], w))
            _account(busy, starts, sc, w, now)
    return _result(sc, mode, busy, starts)


def _account(
    busy: list[dict[str, float]], starts: list[dict[str, int]], sc: CostScenario, w: str, t: float
) -> None:
    """Spread one job's run over the windows it spans."""
    end = t + sc.job_s[w]
    first = int(t / sc.window_s)
    if first < len(starts):
        starts[first][w] += 1
    k = first
    while k < len(busy) and k * sc.window_s < end:
        lo, hi = max(t, k * sc.window_s), min(end, (k + 1) * sc.window_s)
        busy[k][w] += max(0.0, hi - lo)
        k += 1


def _result(
    sc: CostScenario, mode: str, busy: list[dict[str, float]], starts: list[dict[str, int]]
) -> CostResult:
    skip = 1  # the first window learns the estimates
    time_scores = [
        _jain([v / _weight(sc, w) for w, v in b.items()]) for b in busy[skip:] if sum(b.values())
    ]
    count_scores = [
        _jain([float(v) / _weight(sc, w) for w, v in s.items()])
        for s in starts[skip:]
        if sum(s.values())
    ]
    ids = sorted(sc.job_s)
    return CostResult(
        mode=mode,
        time_jain=round(sum(time_scores) / max(1, len(time_scores)), 4),
        count_jain=round(sum(count_scores) / max(1, len(count_scores)), 4),
        worker_s={w: round(sum(b[w] for b in busy), 3) for w in ids},
        jobs={w: sum(s[w] for s in starts) for w in ids},
        windows=tuple({w: round(v, 4) for w, v in b.items()} for b in busy),
    )


def _jain(values: list[float]) -> float:
    index = jain_index(values)
    return 1.0 if index is None else index


def compare(sc: CostScenario) -> dict[str, CostResult]:
    """Both policies over the same scenario."""
    return {mode: simulate_costs(sc, mode) for mode in (COUNT, TIME)}
