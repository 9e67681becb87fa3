"""Why each workspace's due jobs wait: the fair plan's reasons, per workspace.

The plan counts unclaimed jobs per reason over all workspaces; an operator asks
about one workspace. This splits the same accounting by workspace: what its
own limits hold back (paused, partition cap, rate limit, quota), and what it
could have taken but the shared capacity did not give it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from fairbeat.scheduling.fair import WorkspaceDemand, _allowance
from fairbeat.scheduling.reasons import (
    CLAIM_BATCH,
    FLEET_SLOTS,
    GLOBAL_CAPACITY,
    GUARDRAIL_STEP_DOWN,
    WORKSPACE_QUOTA,
)

SHARED = (GLOBAL_CAPACITY, FLEET_SLOTS, GUARDRAIL_STEP_DOWN, CLAIM_BATCH)


def shared_reason(unclaimed: Mapping[str, int]) -> str:
    """The shared limit the plan ran out on (the one that left most jobs)."""
    held = [(unclaimed.get(r, 0), r) for r in SHARED if unclaimed.get(r, 0) > 0]
    return max(held)[1] if held else GLOBAL_CAPACITY


def workspace_waits(
    demands: Iterable[WorkspaceDemand],
    allocations: Mapping[str, int],
    unclaimed: Mapping[str, int],
    partition_cap: int,
) -> dict[str, dict[str, int]]:
    """Workspace -> reason code -> due jobs it left waiting, as the plan decided."""
    shared = shared_reason(unclaimed)
    out: dict[str, dict[str, int]] = {}
    for demand in demands:
        reasons: Counter[str] = Counter()
        allowance, _ = _allowance(demand, partition_cap, reasons)
        taken = allocations.get(demand.workspace_id, 0)
        if allowance > taken:
            reasons[shared] += allowance - taken
        elif taken > allowance:  # borrowed idle capacity above its quota
            reasons[WORKSPACE_QUOTA] -= taken - allowance
        out[demand.workspace_id] = {r: n for r, n in sorted(reasons.items()) if n > 0}
    return out


def tick_reasons(ticks: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Reason code -> due jobs left, summed over ticks' ``unclaimed``."""
    total: Counter[str] = Counter()
    for unclaimed in ticks:
        total.update({r: int(n) for r, n in unclaimed.items()})
    return dict(total.most_common())
