"""The dispatcher's side of fairness by worker time: read the estimates, settle the charge.

The policy is in scheduling/cost.py. Estimates live in Redis (store/live.py),
updated by the worker at each finish (tasks/run.py): an O(1) atomic update
per finished job, and one HMGET per tick over the due workspaces. Without
Redis, every job costs the same (count fairness) for that tick.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from redis import RedisError

from fairbeat.scheduling.cost import COST_BY_COUNT, COUNT, CostPlan, plan_costs, settle
from fairbeat.scheduling.fair import FairState, WorkspaceDemand
from fairbeat.store.claiming import Claim
from fairbeat.tasks.runtime import Runtime


def _mode(rt: Runtime, redis_ok: bool) -> str:
    return rt.settings.fairness if redis_ok else COUNT


def costs(rt: Runtime, workspaces: Sequence[str], redis_ok: bool) -> CostPlan:
    """Each due workspace's job cost for this tick's plan."""
    mode = _mode(rt, redis_ok)
    estimates: dict[str, float] = {}
    if mode != COUNT:
        try:
            estimates, _ = rt.live.run_time_estimates(workspaces)
        except RedisError:
            mode = COUNT
    return plan_costs(mode, list(workspaces), estimates, rt.settings.fairness_default_run_s)


def with_costs(demands: Sequence[WorkspaceDemand], plan: CostPlan) -> list[WorkspaceDemand]:
    return [dataclasses.replace(d, cost=plan.costs.get(d.workspace_id, 1.0)) for d in demands]


def settled(
    rt: Runtime,
    state: FairState,
    plan: CostPlan,
    claims: Sequence[Claim],
    class_of: Callable[[str], str] | None = None,
) -> FairState:
    """The carried state charged with the claimed jobs' own (per kind) estimates.

    With ``class_of`` (a tick planned per priority class), each class's own
    state is charged with that class's claims."""
    if plan.reason_code == COST_BY_COUNT or not claims:
        return state
    if class_of is not None:
        by_class = dict(state.by_class)
        for name, kept in state.by_class.items():
            mine = [c for c in claims if class_of(c.priority_class) == name]
            by_class[name] = settled(rt, kept, plan, mine)
        return dataclasses.replace(state, by_class=by_class)
    pairs = sorted({(c.workspace_id, c.kind) for c in claims})
    try:
        _, by_kind = rt.live.run_time_estimates((), pairs)
    except RedisError:
        return state
    charged: dict[str, float] = defaultdict(float)
    taken: dict[str, int] = defaultdict(int)
    for c in claims:
        own = plan.seconds.get(c.workspace_id, rt.settings.fairness_default_run_s)
        charged[c.workspace_id] += by_kind.get((c.workspace_id, c.kind), own)
        taken[c.workspace_id] += 1
    return settle(state, plan, taken, charged)
