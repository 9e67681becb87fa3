"""Global in-flight capacity: staged ramp-up, deterministic step-down, reason codes.

Rules, first match wins:

1. an operator pin holds capacity at its value (OPERATOR_PIN);
2. an operator step moves it once by its amount, within bounds (OPERATOR_STEP);
3. a guardrail breach (error rate, then contention) steps it down by a fixed
   factor (STEP_DOWN_ERROR_GUARDRAIL, STEP_DOWN_CONTENTION_GUARDRAIL), at most
   once per cooldown, which only a guardrail step-down starts;
4. capacity above the upper bound (which scales with active workspaces)
   comes down to it (STEP_DOWN_BOUNDS);
5. a backlog larger than the free capacity ramps up one bounded stage per
   tick (RAMP_UP_BACKLOG), but not within a cooldown after a step-down
   (HOLD_COOLDOWN), so it cannot oscillate;
6. no backlog and at most half the capacity in use steps down one stage
   (STEP_DOWN_IDLE);
7. otherwise HOLD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairbeat.scheduling.reasons import GLOBAL_CAPACITY, GUARDRAIL_STEP_DOWN

OPERATOR_PIN = "OPERATOR_PIN"
OPERATOR_STEP = "OPERATOR_STEP"
STEP_DOWN_ERROR_GUARDRAIL = "STEP_DOWN_ERROR_GUARDRAIL"
STEP_DOWN_CONTENTION_GUARDRAIL = "STEP_DOWN_CONTENTION_GUARDRAIL"
STEP_DOWN_BOUNDS = "STEP_DOWN_BOUNDS"
RAMP_UP_BACKLOG = "RAMP_UP_BACKLOG"
HOLD_COOLDOWN = "HOLD_COOLDOWN"
STEP_DOWN_IDLE = "STEP_DOWN_IDLE"
HOLD = "HOLD"

GUARDRAILS = frozenset({STEP_DOWN_ERROR_GUARDRAIL, STEP_DOWN_CONTENTION_GUARDRAIL})
STEP_DOWNS = GUARDRAILS | {STEP_DOWN_BOUNDS, STEP_DOWN_IDLE}


@dataclass(frozen=True)
class AutoscalePolicy:
    min_capacity: int = 8
    max_capacity: int = 512
    per_workspace: int = 16  # the upper bound grows by this per active workspace
    ramp_fraction: float = 0.25  # one stage: a quarter more ...
    ramp_max_step: int = 32  # ... but never more than this per tick
    step_down_factor: float = 0.75  # a guardrail keeps three quarters
    idle_step: int = 4  # an idle fleet gives back this many per tick
    error_rate_limit: float = 0.05
    contention_limit: float = 0.2
    cooldown_s: float = 60.0
    in_flight_per_slot: int = 2  # for the desired worker count


@dataclass(frozen=True)
class Override:
    pin: int | None = None
    step: int | None = None  # one-shot: the caller clears it once applied


@dataclass(frozen=True)
class AutoscaleInputs:
    now_s: float  # the caller's clock, seconds
    previous: int
    active_workspaces: int
    due_backlog: int
    in_flight: int
    error_rate: float | None = None
    contention: float | None = None  # lost claims / planned, recently
    queue_age_p95_s: float | None = None
    last_step_down_s: float | None = None
    override: Override = field(default_factory=Override)


@dataclass(frozen=True)
class CapacityDecision:
    capacity: int
    reason_code: str
    desired_workers: int
    evidence: Mapping[str, Any]

    @property
    def stepped_down(self) -> bool:
        return self.reason_code in STEP_DOWNS

    @property
    def starts_cooldown(self) -> bool:
        """Only a guardrail starts the cooldown: following the bounds or an idle fleet
        down must not block the ramp-up when work comes back."""
        return self.reason_code in GUARDRAILS


def bounds(policy: AutoscalePolicy, active_workspaces: int) -> tuple[int, int]:
    upper = policy.per_workspace * max(1, active_workspaces)
    return policy.min_capacity, max(policy.min_capacity, min(policy.max_capacity, upper))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def decide_capacity(
    inputs: AutoscaleInputs, policy: AutoscalePolicy, worker_concurrency: int
) -> CapacityDecision:
    capacity, reason = _decide(inputs, policy)
    low, high = bounds(policy, inputs.active_workspaces)
    evidence = {
        "previous": inputs.previous,
        "bounds": [low, high],
        "active_workspaces": inputs.active_workspaces,
        "due_backlog": inputs.due_backlog,
        "in_flight": inputs.in_flight,
        "error_rate": inputs.error_rate,
        "contention": inputs.contention,
        "queue_age_p95_s": inputs.queue_age_p95_s,
    }
    slots = max(1, policy.in_flight_per_slot * worker_concurrency)
    return CapacityDecision(capacity, reason, math.ceil(capacity / slots), evidence)


def _decide(inputs: AutoscaleInputs, policy: AutoscalePolicy) -> tuple[int, str]:
    low, high = bounds(policy, inputs.active_workspaces)
    previous = max(1, inputs.previous)
    if inputs.override.pin is not None:
        return max(1, inputs.override.pin), OPERATOR_PIN
    if inputs.override.step is not None:
        return _clamp(previous + inputs.override.step, low, high), OPERATOR_STEP
    cooling = (
        inputs.last_step_down_s is not None
        and inputs.now_s - inputs.last_step_down_s < policy.cooldown_s
    )
    stepped = _clamp(math.floor(previous * policy.step_down_factor), low, high)
    held = _clamp(previous, low, high)  # a hold never keeps capacity outside the bounds
    if inputs.error_rate is not None and inputs.error_rate > policy.error_rate_limit:
        return (held, HOLD_COOLDOWN) if cooling else (stepped, STEP_DOWN_ERROR_GUARDRAIL)
    if inputs.contention is not None and inputs.contention > policy.contention_limit:
        return (held, HOLD_COOLDOWN) if cooling else (stepped, STEP_DOWN_CONTENTION_GUARDRAIL)
    if previous > high:
        return high, STEP_DOWN_BOUNDS
    free = previous - inputs.in_flight
    if inputs.due_backlog > free:
        if cooling:
            return held, HOLD_COOLDOWN
        stage = min(policy.ramp_max_step, max(1, math.ceil(previous * policy.ramp_fraction)))
        ramped = _clamp(previous + stage, low, high)
        return (ramped, RAMP_UP_BACKLOG) if ramped > previous else (held, HOLD)
    if inputs.due_backlog == 0 and inputs.in_flight * 2 <= previous and previous > low:
        return _clamp(previous - policy.idle_step, low, high), STEP_DOWN_IDLE
    return held, HOLD


# Not rules of the decision above: where a tick's capacity came from otherwise.
FIXED_CAPACITY = "FIXED_CAPACITY"  # autoscale is off: FAIRBEAT_GLOBAL_CAPACITY
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"  # no state to scale from: the fixed capacity
CONTENTION_SMOOTHING = 0.2  # weight of the newest tick in the contention average


def fixed_capacity(capacity: int, reason_code: str, worker_concurrency: int) -> CapacityDecision:
    """A capacity that is not scaled: autoscale off, or no state to scale from."""
    slots = 2 * max(1, worker_concurrency)
    return CapacityDecision(capacity, reason_code, -(-capacity // slots), {"fixed": capacity})


def held_by(decision: CapacityDecision, state: Mapping[str, Any]) -> str:
    """What jobs held by capacity are waiting for: a guardrail's step-down, or
    plain capacity (the reason code the plan counts them under)."""
    if decision.reason_code in GUARDRAILS or (
        decision.reason_code == HOLD_COOLDOWN and state.get("reason") in GUARDRAILS
    ):
        return GUARDRAIL_STEP_DOWN
    return GLOBAL_CAPACITY


def smoothed_contention(previous: float | None, planned: int, lost: int) -> float | None:
    """Lost claims / planned claims, averaged over recent ticks; a tick that
    planned nothing says nothing about contention."""
    if not planned:
        return previous
    sample = lost / planned
    if previous is None:
        return sample
    return CONTENTION_SMOOTHING * sample + (1 - CONTENTION_SMOOTHING) * previous


def next_state(
    decision: CapacityDecision,
    state: Mapping[str, Any],
    *,
    now_s: float,
    planned: int,
    lost: int,
) -> dict[str, Any] | None:
    """The autoscale state to carry into the next tick; None when nothing is kept
    (a fixed capacity has no state)."""
    if decision.reason_code in (FIXED_CAPACITY, REDIS_UNAVAILABLE):
        return None
    # A hold inside a guardrail's cooldown keeps naming the guardrail.
    was_guardrail = decision.reason_code == HOLD_COOLDOWN and state.get("reason") in GUARDRAILS
    return {
        "capacity": decision.capacity,
        "reason": state.get("reason") if was_guardrail else decision.reason_code,
        "desired_workers": decision.desired_workers,
        "last_step_down_s": now_s if decision.starts_cooldown else state.get("last_step_down_s"),
        "contention": smoothed_contention(state.get("contention"), planned, lost),
    }
