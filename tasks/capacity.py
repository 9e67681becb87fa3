"""The dispatcher's capacity and rate-limit inputs, read from Redis with safe fallbacks."""

from __future__ import annotations

import logging
from typing import Any

from redis import RedisError

from fairbeat.scheduling import ratelimit
from fairbeat.scheduling.autoscale import (
    GUARDRAILS,
    HOLD_COOLDOWN,
    AutoscaleInputs,
    AutoscalePolicy,
    CapacityDecision,
    Override,
    decide_capacity,
)
from fairbeat.scheduling.reasons import GLOBAL_CAPACITY, GUARDRAIL_STEP_DOWN
from fairbeat.store.selection import WorkspaceProfile
from fairbeat.tasks.runtime import Runtime

log = logging.getLogger("fairbeat.autoscale")

FIXED_CAPACITY = "FIXED_CAPACITY"  # autoscale is off: FAIRBEAT_GLOBAL_CAPACITY
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"  # no state to scale from: the fixed capacity
CONTENTION_SMOOTHING = 0.2  # weight of the newest tick in the contention average


def policy_of(rt: Runtime) -> AutoscalePolicy:
    s = rt.settings
    return AutoscalePolicy(
        min_capacity=s.capacity_min,
        max_capacity=s.capacity_max,
        per_workspace=s.capacity_per_workspace,
        error_rate_limit=s.error_rate_limit,
        contention_limit=s.contention_limit,
        cooldown_s=s.autoscale_cooldown_s,
    )


def _fixed(rt: Runtime, reason: str) -> CapacityDecision:
    s = rt.settings
    capacity = s.global_capacity
    slots = 2 * s.worker_concurrency
    return CapacityDecision(capacity, reason, -(-capacity // slots), {"fixed": capacity})


def decide(
    rt: Runtime, now_s: float, active: int, backlog: int, in_flight: int, redis_ok: bool
) -> tuple[CapacityDecision, dict[str, Any]]:
    """This tick's capacity, and the autoscale state it was decided from."""
    if not rt.settings.autoscale_enabled:
        return _fixed(rt, FIXED_CAPACITY), {}
    if not redis_ok:
        return _fixed(rt, REDIS_UNAVAILABLE), {}
    try:
        state, override, signals = rt.control.autoscale_inputs()
        step = override.get("step")
        if step is not None:
            rt.control.clear_capacity_step(override)
    except RedisError:
        return _fixed(rt, REDIS_UNAVAILABLE), {}
    inputs = AutoscaleInputs(
        now_s=now_s,
        previous=int(state.get("capacity", rt.settings.global_capacity)),
        active_workspaces=active,
        due_backlog=backlog,
        in_flight=in_flight,
        error_rate=signals.get("failure_rate"),
        contention=state.get("contention"),
        queue_age_p95_s=signals.get("queue_age_p95_s"),
        last_step_down_s=state.get("last_step_down_s"),
        override=Override(pin=override.get("pin"), step=step),
    )
    decision = decide_capacity(inputs, policy_of(rt), rt.settings.worker_concurrency)
    if decision.capacity != inputs.previous or decision.reason_code != state.get("reason"):
        extra = {
            "action": "autoscale.decision",
            "capacity": decision.capacity,
            "reason_code": decision.reason_code,
            "desired_workers": decision.desired_workers,
            **decision.evidence,
        }
        log.info(
            "capacity %s -> %s (%s)",
            inputs.previous,
            decision.capacity,
            decision.reason_code,
            extra=extra,
        )
    return decision, state


def held_by(decision: CapacityDecision, state: dict[str, Any]) -> str:
    """What to call jobs held by capacity: a guardrail's doing, or plain capacity."""
    if decision.reason_code in GUARDRAILS or (
        decision.reason_code == HOLD_COOLDOWN and state.get("reason") in GUARDRAILS
    ):
        return GUARDRAIL_STEP_DOWN
    return GLOBAL_CAPACITY


def save(
    rt: Runtime,
    decision: CapacityDecision,
    state: dict[str, Any],
    now_s: float,
    planned: int,
    lost: int,
    fence: int,
) -> None:
    """Keep the decision for the next tick, fenced: a superseded dispatcher writes nothing."""
    if decision.reason_code in (FIXED_CAPACITY, REDIS_UNAVAILABLE):
        return
    contention = state.get("contention")
    if planned:
        sample = lost / planned
        contention = (
            sample
            if contention is None
            else (CONTENTION_SMOOTHING * sample + (1 - CONTENTION_SMOOTHING) * contention)
        )
    was_guardrail = decision.reason_code == HOLD_COOLDOWN and state.get("reason") in GUARDRAILS
    new = {
        "capacity": decision.capacity,
        "reason": state.get("reason") if was_guardrail else decision.reason_code,
        "desired_workers": decision.desired_workers,
        "last_step_down_s": now_s if decision.starts_cooldown else state.get("last_step_down_s"),
        "contention": contention,
    }
    try:
        rt.control.save_autoscale_state(new, fence)
    except RedisError:
        log.warning("autoscale state not saved", extra={"action": "autoscale.not_saved"})


def rate_limit_of(rt: Runtime, profile: WorkspaceProfile) -> float | None:
    if profile.rate_limit_per_s is not None:
        return profile.rate_limit_per_s if profile.rate_limit_per_s > 0 else None
    return rt.settings.tier_rate_limits.get(profile.tier)


def rate_allowances(rt: Runtime, limits: dict[str, float], now_s: float) -> dict[str, int]:
    """Starts each rate-limited workspace may take now.

    Without Redis: one burst per tick, and only beat ticks run then (about one
    a second), so the limit roughly holds and nothing stalls.
    """
    if not limits:
        return {}
    try:
        tats = rt.control.rate_tats(limits)
    except RedisError:
        return {w: ratelimit.burst_for(rate) for w, rate in limits.items()}
    return {
        w: ratelimit.available(
            now_s=now_s, tat_s=tats.get(w), rate_per_s=rate, burst=ratelimit.burst_for(rate)
        )
        for w, rate in limits.items()
    }


def consume_rates(
    rt: Runtime, limits: dict[str, float], claimed: dict[str, int], now_s: float
) -> None:
    if not any(w in limits for w in claimed):
        return
    try:
        tats = rt.control.rate_tats(w for w in claimed if w in limits)
        rt.control.save_rate_tats(
            {
                w: ratelimit.consume(now_s=now_s, tat_s=tats.get(w), rate_per_s=limits[w], n=n)
                for w, n in claimed.items()
                if w in limits
            }
        )
    except RedisError:
        log.warning("rate limit state not saved", extra={"action": "ratelimit.not_saved"})
