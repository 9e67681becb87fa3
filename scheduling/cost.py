"""Fair by worker time: what one job of each workspace costs the fair plan.

With ``fairness = "count"`` every job costs one unit of credit, so backlogged
workspaces get equal (weighted) numbers of job starts. With ``"time"`` a job
costs its estimated run time: an exponentially weighted moving average of the
run times of the workspace's finished jobs of that kind, kept in Redis and
updated at each finish. The plan charges a workspace's deficit its estimate
per job; ``settle`` then corrects the charge with the estimates of the kinds
actually claimed, so a workspace with cheap and costly kinds pays for what it
took. Tier weights still scale the credit each visit earns, so backlogged
workspaces get worker seconds in proportion to their weights.

Costs are scaled by the costliest due workspace's estimate, so each lies in
(0, 1] and one visit's credit (at least one unit for weight >= 1) buys at
least one job of any workspace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairbeat.scheduling.fair import FairState

COUNT = "count"
TIME = "time"
FAIRNESS_MODES = (COUNT, TIME)

COST_BY_COUNT = "COST_BY_COUNT"  # every job costs one unit
COST_ESTIMATED = "COST_ESTIMATED"  # every due workspace had a run-time estimate
COST_DEFAULTED = "COST_DEFAULTED"  # some had none: they cost the default estimate

# A job's estimate never counts below this share of the costliest: it bounds
# how many jobs one visit can buy (and float error).
MIN_COST = 0.001


def ewma(old: float | None, sample_s: float, alpha: float) -> float:
    """The next run-time estimate after one finished job took ``sample_s``."""
    sample = max(0.0, sample_s)
    return sample if old is None else old + alpha * (sample - old)


@dataclass(frozen=True)
class CostPlan:
    costs: Mapping[str, float]  # workspace -> credit one job costs, in (0, 1]
    seconds: Mapping[str, float]  # workspace -> estimated seconds of one job
    scale_s: float  # seconds one unit of credit stands for
    reason_code: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def plan_costs(
    mode: str,
    workspaces: list[str],
    estimates: Mapping[str, float],
    default_s: float,
) -> CostPlan:
    """Each due workspace's job cost: 1 by count, or its estimate scaled by the costliest."""
    if mode == COUNT or not workspaces:
        return CostPlan(dict.fromkeys(workspaces, 1.0), {}, 1.0, COST_BY_COUNT)
    seconds = {w: max(0.0, estimates.get(w, default_s)) for w in workspaces}
    scale = max(seconds.values())
    if scale <= 0:
        return CostPlan(dict.fromkeys(workspaces, 1.0), seconds, 1.0, COST_BY_COUNT)
    costs = {w: max(MIN_COST, s / scale) for w, s in seconds.items()}
    unknown = sorted(w for w in workspaces if w not in estimates)
    return CostPlan(
        costs=costs,
        seconds=seconds,
        scale_s=scale,
        reason_code=COST_DEFAULTED if unknown else COST_ESTIMATED,
        evidence={"unknown": unknown[:10], "unknown_count": len(unknown), "scale_s": scale},
    )


def settle(
    state: FairState,
    plan: CostPlan,
    taken: Mapping[str, int],
    charged_s: Mapping[str, float],
) -> FairState:
    """The carried state, the planned charge replaced by what the claims cost.

    ``charged_s`` is each workspace's sum of its claimed jobs' own estimates
    (per kind). Only workspaces whose credit carries are corrected; the
    correction never adds credit (a job cheaper than planned is not refunded
    beyond what carried) and leaves a debt of at most one unit.
    """
    if plan.reason_code == COST_BY_COUNT:
        return state
    deficits = dict(state.deficits)
    for workspace, credit in state.deficits.items():
        n = taken.get(workspace, 0)
        if not n or workspace not in charged_s:
            continue
        planned = n * plan.costs[workspace]
        actual = charged_s[workspace] / plan.scale_s
        # Never more credit than it carried (the plan bounded that), and a debt
        # of at most one job of the costliest workspace.
        deficits[workspace] = max(-1.0, min(credit, credit + planned - actual))
    return dataclasses.replace(state, deficits=deficits)
