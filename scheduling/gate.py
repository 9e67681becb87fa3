"""The promotion gate: each 15-minute window moves a workspace up, down, or not at all.

The quota ladder is ``ladder`` (64 -> 100 by default) above the workspace's
tier base; rung -1 is the base. For high-quota workspaces only:

- promote one rung after ``promote_after`` consecutive healthy windows with
  demand (queue-age p95, failure rate, contention under their bars, and a
  duplicate signal of 0);
- demote one rung after ``demote_after`` consecutive breach windows;
- demote to base at once on a duplicate-send breach: a customer-visible
  effect that ran twice. Effects ``once()`` suppressed and deliveries the
  fence dropped are the system working; they are counted beside it as
  evidence and never demote.

Deterministic: the same state, metrics and window give the same verdict.
The window itself is checked first: only a finished window, aligned to the
window size, can be evaluated (``check_window``).
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

# A window the gate refuses to evaluate (nothing is written).
WINDOW_OK = "WINDOW_OK"
WINDOW_IN_FUTURE = "WINDOW_IN_FUTURE"
WINDOW_NOT_FINISHED = "WINDOW_NOT_FINISHED"
WINDOW_NOT_ALIGNED = "WINDOW_NOT_ALIGNED"

BASE_RUNG = -1

# duplicate_event reasons by what they mean to the customer. Only an effect
# that ran twice is a duplicate send; the others were stopped before anything
# was sent twice.
DUPLICATE_SEND_REASONS = frozenset({"EFFECT_RACED"})  # two attempts ran the effect
SUPPRESSED_REASONS = frozenset({"EFFECT_SUPPRESSED"})  # once() returned the recorded result
DROPPED_REASONS = frozenset({"STALE_FENCE", "REPEATED_DELIVERY", "NOT_CLAIMED"})  # fence refused


@dataclass(frozen=True)
class DuplicateCounts:
    duplicate_sends: int = 0  # customer-visible: demotes at once
    suppressed_effects: int = 0
    dropped_deliveries: int = 0
    unclassified: int = 0  # a reason this version does not know: reported, never demotes


def classify_duplicates(by_reason: Mapping[str, int]) -> DuplicateCounts:
    """Split duplicate_event counts by reason into what each means."""

    def total(reasons: frozenset[str]) -> int:
        return sum(n for reason, n in by_reason.items() if reason in reasons)

    known = DUPLICATE_SEND_REASONS | SUPPRESSED_REASONS | DROPPED_REASONS
    return DuplicateCounts(
        duplicate_sends=total(DUPLICATE_SEND_REASONS),
        suppressed_effects=total(SUPPRESSED_REASONS),
        dropped_deliveries=total(DROPPED_REASONS),
        unclassified=sum(n for reason, n in by_reason.items() if reason not in known),
    )


@dataclass(frozen=True)
class WindowCheck:
    reason_code: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason_code == WINDOW_OK


def check_window(*, start_s: float, window_s: int, now_s: float) -> WindowCheck:
    """Whether the window starting at ``start_s`` (epoch seconds) may be evaluated at ``now_s``.

    Only a finished window can be: its figures are complete, and a marker
    written for a later one would hold the gate at ALREADY_EVALUATED until then.
    """
    evidence = {"start_s": start_s, "window_s": window_s, "now_s": now_s}
    if start_s > now_s:
        return WindowCheck(WINDOW_IN_FUTURE, evidence)
    if start_s + window_s > now_s:
        return WindowCheck(WINDOW_NOT_FINISHED, evidence)
    if start_s % window_s:
        return WindowCheck(WINDOW_NOT_ALIGNED, evidence)
    return WindowCheck(WINDOW_OK, evidence)


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
    duplicates: int  # customer-visible duplicate sends (effects that ran twice)
    peak_in_flight: int  # demand: the most it had running at once
    # Evidence only, never a breach: the system keeping a duplicate from happening.
    suppressed_effects: int = 0
    dropped_deliveries: int = 0


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
