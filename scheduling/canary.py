"""The canary's go/no-go verdict against the locked thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GO = "GO"
NO_GO = "NO_GO"


@dataclass(frozen=True)
class Thresholds:
    queue_age_p95_s: float = 300.0  # as locked: five minutes
    duplicate_sends: int = 0
    stale_runs: int = 0


@dataclass(frozen=True)
class CanaryMeasures:
    queue_age_p95_s: float | None
    duplicate_sends: int
    stale_runs: int
    jobs_by_workspace: Mapping[str, int]  # enqueued
    done_by_workspace: Mapping[str, int]  # succeeded or failed by the deadline
    max_wait_by_workspace: Mapping[str, float]  # due to start, the longest wait


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    measured: Any
    limit: Any


@dataclass(frozen=True)
class Verdict:
    decision: str
    checks: tuple[Check, ...]
    starved: tuple[str, ...] = field(default_factory=tuple)


def starved_workspaces(m: CanaryMeasures, limit_s: float) -> tuple[str, ...]:
    """A workspace is starved if its jobs did not all finish, or one waited past the limit."""
    return tuple(
        sorted(
            w
            for w, n in m.jobs_by_workspace.items()
            if m.done_by_workspace.get(w, 0) < n or m.max_wait_by_workspace.get(w, 0.0) > limit_s
        )
    )


def verdict(m: CanaryMeasures, t: Thresholds) -> Verdict:
    starved = starved_workspaces(m, t.queue_age_p95_s)
    p95 = m.queue_age_p95_s
    checks = (
        Check(
            "queue_age_p95_s", p95 is not None and p95 <= t.queue_age_p95_s, p95, t.queue_age_p95_s
        ),
        Check(
            "duplicate_sends",
            m.duplicate_sends <= t.duplicate_sends,
            m.duplicate_sends,
            t.duplicate_sends,
        ),
        Check("stale_runs", m.stale_runs <= t.stale_runs, m.stale_runs, t.stale_runs),
        Check("starved_workspaces", not starved, len(starved), 0),
    )
    return Verdict(GO if all(c.passed for c in checks) else NO_GO, checks, starved)
