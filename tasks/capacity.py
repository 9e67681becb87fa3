"""The dispatcher's capacity, fleet and rate-limit inputs: read from Redis with
safe fallbacks, decided by scheduling/, and the carried state written back."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis import RedisError

from fairbeat.scheduling import ratelimit
from fairbeat.scheduling.autoscale import (
    FIXED_CAPACITY,
    REDIS_UNAVAILABLE,
    AutoscaleInputs,
    AutoscalePolicy,
    CapacityDecision,
    Override,
    decide_capacity,
    fixed_capacity,
    next_state,
)
from fairbeat.scheduling.fleet import FleetCap, fleet_cap
from fairbeat.tasks.runtime import Runtime

log = logging.getLogger("fairbeat.autoscale")

__all__ = ["FIXED_CAPACITY", "REDIS_UNAVAILABLE", "CapacityReading", "decide", "fleet", "save"]


@dataclass(frozen=True)
class CapacityReading:
    """A tick's capacity decision and the Redis state it was decided from."""

    decision: CapacityDecision
    state: Mapping[str, Any] = field(default_factory=dict)
    # The operator override read; a one-shot step in it is cleared once applied.
    override: Mapping[str, Any] = field(default_factory=dict)


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


def _fixed(rt: Runtime, reason: str) -> CapacityReading:
    s = rt.settings
    return CapacityReading(fixed_capacity(s.global_capacity, reason, s.worker_concurrency))


def decide(
    rt: Runtime, now_s: float, active: int, backlog: int, in_flight: int, redis_ok: bool
) -> CapacityReading:
    """This tick's capacity; reads only (the step is cleared by ``save``)."""
    if not rt.settings.autoscale_enabled:
        return _fixed(rt, FIXED_CAPACITY)
    if not redis_ok:
        return _fixed(rt, REDIS_UNAVAILABLE)
    try:
        state, override, signals = rt.control.autoscale_inputs()
    except RedisError:
        return _fixed(rt, REDIS_UNAVAILABLE)
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
        override=Override(pin=override.get("pin"), step=override.get("step")),
    )
    decision = decide_capacity(inputs, policy_of(rt), rt.settings.worker_concurrency)
    return CapacityReading(decision, state, override)


def log_change(reading: CapacityReading) -> None:
    decision, state = reading.decision, reading.state
    previous = state.get("capacity")
    if decision.capacity == previous and decision.reason_code == state.get("reason"):
        return
    extra = {
        "action": "autoscale.decision",
        "capacity": decision.capacity,
        "reason_code": decision.reason_code,
        "desired_workers": decision.desired_workers,
        **decision.evidence,
    }
    log.info(
        "capacity %s -> %s (%s)", previous, decision.capacity, decision.reason_code, extra=extra
    )


def save(
    rt: Runtime, reading: CapacityReading, now_s: float, planned: int, lost: int, fence: int
) -> None:
    """Keep the decision for the next tick, fenced: a superseded dispatcher writes nothing."""
    new = next_state(reading.decision, reading.state, now_s=now_s, planned=planned, lost=lost)
    if new is None:
        return
    try:
        if reading.override.get("step") is not None:
            rt.control.clear_capacity_step(reading.override)
        rt.control.save_autoscale_state(new, fence)
    except RedisError:
        log.warning("autoscale state not saved", extra={"action": "autoscale.not_saved"})
    log_change(reading)


def fleet(rt: Runtime, redis_ok: bool, finish_rate_per_s: float = 0.0) -> FleetCap:
    """What the live workers can start: their reported slots, or one worker's worth,
    and ``FAIRBEAT_CLAIM_AHEAD_S`` of work at the rate they finish jobs."""
    workers = []
    if redis_ok:
        try:
            workers = rt.live.worker_slots()
        except RedisError:
            workers = []
    s = rt.settings
    return fleet_cap(
        workers,
        job_queues=s.job_queues,
        claims_per_slot=s.fleet_claims_per_slot,
        default_slots=s.worker_concurrency,
        finish_rate_per_s=finish_rate_per_s,
        # Fair by worker time, jobs claimed ahead would skew it: they count
        # against their workspace's quota, in jobs, before they hold a slot,
        # so a deep queue holds 16 long jobs of one workspace beside 16 short
        # ones of another (time_jain 0.79 against 0.99 with the per-slot bound).
        claim_ahead_s=0.0 if s.fairness == "time" else s.claim_ahead_s,
    )


def rate_tats(rt: Runtime, limits: Mapping[str, float]) -> dict[str, float] | None:
    """Each rate-limited workspace's arrival time; None when Redis cannot say."""
    if not limits:
        return {}
    try:
        return rt.control.rate_tats(limits)
    except RedisError:
        return None


def rate_allowances(
    limits: Mapping[str, float], tats: Mapping[str, float] | None, now_s: float
) -> dict[str, int]:
    """Starts each rate-limited workspace may take now.

    Without Redis: one burst per tick, and only beat ticks run then (about one
    a second), so the limit roughly holds and nothing stalls.
    """
    if tats is None:
        return {w: ratelimit.burst_for(rate) for w, rate in limits.items()}
    return ratelimit.allowances(limits, tats, now_s)


def consume_rates(
    rt: Runtime,
    limits: Mapping[str, float],
    tats: Mapping[str, float] | None,
    claimed: Mapping[str, int],
    now_s: float,
) -> None:
    started = {w: n for w, n in claimed.items() if w in limits}
    if not started or tats is None:
        return
    try:
        rt.control.save_rate_tats(ratelimit.consumed(limits, tats, started, now_s))
    except RedisError:
        log.warning("rate limit state not saved", extra={"action": "ratelimit.not_saved"})
