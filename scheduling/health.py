"""The health snapshot's figures, from raw observations the caller gathered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fairbeat.scheduling.stats import percentile


@dataclass(frozen=True)
class Observations:
    queue_waits_s: Sequence[tuple[str, float]]  # (workspace, seconds from due to start or now)
    starts_by_workspace: Mapping[str, int]  # jobs started in the window
    finished: int  # jobs that finished in the window
    failed: int  # of which dead-lettered


@dataclass(frozen=True)
class Figures:
    queue_age_p95_s: float | None
    queue_age_p95_by_workspace: dict[str, float]
    failure_rate: float | None
    top_workspace: str | None
    top_workspace_share: float | None


def figures(obs: Observations, top_n: int) -> Figures:
    """p95 of queue age overall and for the ``top_n`` slowest workspaces; rates and shares."""
    overall = percentile([w for _, w in obs.queue_waits_s], 0.95)
    per: dict[str, list[float]] = {}
    for workspace, wait in obs.queue_waits_s:
        per.setdefault(workspace, []).append(wait)
    by_workspace = {w: percentile(v, 0.95) or 0.0 for w, v in per.items()}
    slowest = sorted(by_workspace.items(), key=lambda item: (-item[1], item[0]))[:top_n]
    starts = Counter(obs.starts_by_workspace)
    total = sum(starts.values())
    top = min(starts.items(), key=lambda item: (-item[1], item[0]), default=None)
    return Figures(
        queue_age_p95_s=None if overall is None else round(overall, 3),
        queue_age_p95_by_workspace={w: round(v, 3) for w, v in slowest},
        failure_rate=round(obs.failed / obs.finished, 4) if obs.finished else None,
        top_workspace=top[0] if top else None,
        top_workspace_share=round(top[1] / total, 4) if top and total else None,
    )
