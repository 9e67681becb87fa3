"""The promotion gate: each 15-minute window moves a workspace up, down, or not at all.

The quota ladder is ``ladder`` (64 -> 100 by default) above the workspace's
tier base; rung -1 is the base. For high-quota workspaces only:

- promote one rung after ``promote_after`` consecutive healthy windows with
  demand (queue-age p95, failure rate, contention under their bars, and a
  duplicate signal of 0);
- demote one rung after ``demote_after`` consecutive breach windows;
- demote to base at once on a duplicate-send breach.

Deterministic: the same state, metrics and window give the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

PROMOTED = "PROMOTED"
DEMOTED_SUSTAINED_BREACH = "DEMOTED_SUSTAINED_BREACH"
DEMOTED_DUPLICATE_SEND = "DEMOTED_DUPLICATE_SEND"
NOT_ENABLED = "NOT_ENABLED"
AT_TOP_RUNG = "AT_TOP_RUNG"
AT_BASE = "AT_BASE"
HOLD_HEALTHY_STREAK = "HOLD_HEALTHY_STREAK"
HOLD_BREACH_STREAK = "HOLD_BREACH_STREAK"
HOLD_NO_DEMAND = "HOLD_NO_DEMAND"
HOLD_PROMOTION_DISABLED = "HOLD_PROMOTION_DISABLED"
ALREADY_EVALUATED = "ALREADY_EVALUATED"

BASE_RUNG = -1


@dataclass(frozen=True)
class GatePolicy:
    ladder: tuple[int, ...] = (64, 100)
    promote_after: int = 2
    demote_after: int = 2
    queue_age_p95_limit_s: float = 300.0
    failure_rate_limit: float = 0.05
    contention_limit: float = 0.2


@dataclass(frozen=True)
class WindowMetrics:
    jobs: int  # jobs of the workspace seen in the window (started or finished)
    queue_age_p95_s: float | None
    failure_rate: float | None
    contention: float | None
    duplicates: int
    peak_in_flight: int  # demand: the most it had running at once


@dataclass(frozen=True)
class GateState:
    rung: int = BASE_RUNG
    healthy_streak: int = 0
    breach_streak: int = 0
    last_window: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateState:
        return cls(
            **{
                k: data[k]
                for k in ("rung", "healthy_streak", "breach_streak", "last_window")
                if k in data
            }
        )


@dataclass(frozen=True)
class GateVerdict:
    workspace_id: str
    window: str
    from_quota: int
    to_quota: int
    reason_code: str
    state: GateState
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.from_quota != self.to_quota


def quota_at(rung: int, base: int, policy: GatePolicy) -> int:
    return (
        base if rung <= BASE_RUNG else max(base, policy.ladder[min(rung, len(policy.ladder) - 1)])
    )


def breaches(m: WindowMetrics, policy: GatePolicy) -> list[str]:
    out = []
    if m.queue_age_p95_s is not None and m.queue_age_p95_s > policy.queue_age_p95_limit_s:
        out.append("queue_age_p95")
    if m.failure_rate is not None and m.failure_rate > policy.failure_rate_limit:
        out.append("failure_rate")
    if m.contention is not None and m.contention > policy.contention_limit:
        out.append("contention")
    return out


def decide_gate(
    *,
    workspace_id: str,
    window: str,
    high_quota_enabled: bool,
    promotion_enabled: bool,
    base_quota: int,
    metrics: WindowMetrics,
    state: GateState,
    policy: GatePolicy,
) -> GateVerdict:
    before = quota_at(state.rung, base_quota, policy)
    evidence = {**asdict(metrics), "breaches": breaches(metrics, policy), "quota": base_quota}

    def verdict(reason: str, new: GateState) -> GateVerdict:
        new = replace(new, last_window=window)
        after = quota_at(new.rung, base_quota, policy)
        return GateVerdict(workspace_id, window, before, after, reason, new, evidence)

    if state.last_window is not None and window <= state.last_window:
        return GateVerdict(workspace_id, window, before, before, ALREADY_EVALUATED, state, evidence)
    if not high_quota_enabled:
        return verdict(NOT_ENABLED, GateState())
    if metrics.duplicates > 0:
        return verdict(DEMOTED_DUPLICATE_SEND, GateState())
    if evidence["breaches"]:
        return _on_breach(state, verdict, policy)
    demand = metrics.jobs > 0 and metrics.peak_in_flight >= before
    if not demand:
        return verdict(HOLD_NO_DEMAND, replace(state, healthy_streak=0, breach_streak=0))
    return _on_healthy(state, verdict, policy, promotion_enabled)


Verdict = Callable[[str, "GateState"], "GateVerdict"]


def _on_breach(state: GateState, verdict: Verdict, policy: GatePolicy) -> GateVerdict:
    streak = state.breach_streak + 1
    if streak < policy.demote_after:
        return verdict(HOLD_BREACH_STREAK, replace(state, breach_streak=streak, healthy_streak=0))
    if state.rung <= BASE_RUNG:
        return verdict(AT_BASE, GateState())
    return verdict(DEMOTED_SUSTAINED_BREACH, GateState(rung=state.rung - 1))


def _on_healthy(
    state: GateState, verdict: Verdict, policy: GatePolicy, promotion_enabled: bool
) -> GateVerdict:
    streak = state.healthy_streak + 1
    top = len(policy.ladder) - 1
    if streak < policy.promote_after:
        return verdict(HOLD_HEALTHY_STREAK, replace(state, healthy_streak=streak, breach_streak=0))
    held = replace(state, healthy_streak=streak, breach_streak=0)
    if not promotion_enabled:
        return verdict(HOLD_PROMOTION_DISABLED, held)
    if state.rung >= top:
        return verdict(AT_TOP_RUNG, held)
    return verdict(PROMOTED, GateState(rung=state.rung + 1))
