"""Claims the fleet can start: in-flight jobs bounded by the live workers' slots.

A claim that waits in a broker queue longer than the delivery timeout is sent
again, so claiming far past what the workers can start turns a backlog into
re-sent messages. The bound is ``claims_per_slot`` in-flight jobs (running
plus waiting in the broker) per job slot of the workers alive now: with the
default of 2, every slot has its next job waiting, and no claim waits behind
more than one running job per slot.

Short jobs drain two per slot faster than the dispatcher ticks again, and
the slots then idle with a backlog waiting. So the bound also covers
``claim_ahead_s`` of work at the rate the fleet is finishing jobs (Little's
law: the jobs waiting = rate x the wait): every slot's next jobs are already
in the broker for that long, and a new job of another workspace waits about
that long behind them, a time rather than a count of jobs of unknown length.

The dispatcher's claim is kind-agnostic (it claims per workspace), so the
bound applies to the fleet's job slots as a whole; the per-queue figures are
evidence, and a queue that no live worker consumes shows 0 slots.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairbeat.scheduling.reasons import FLEET_SLOTS

__all__ = ["FLEET_SLOTS", "FLEET_SLOTS_UNKNOWN", "FleetCap", "WorkerSlots", "fleet_cap"]

# FLEET_SLOTS (also the backpressure code): bounded by the slots the live workers reported.
FLEET_SLOTS_UNKNOWN = "FLEET_SLOTS_UNKNOWN"  # no worker reported: one worker's worth assumed


@dataclass(frozen=True)
class WorkerSlots:
    """What one live worker reported: its job slots and the job queues it consumes."""

    hostname: str
    slots: int
    queues: tuple[str, ...]


@dataclass(frozen=True)
class FleetCap:
    capacity: int  # most jobs in flight (claimed + running) the fleet can start in time
    reason_code: str
    slots: int  # job slots of the live workers (or the assumed default)
    per_queue: Mapping[str, int] = field(default_factory=dict)  # queue -> slots consuming it
    evidence: Mapping[str, Any] = field(default_factory=dict)


def fleet_cap(
    workers: Iterable[WorkerSlots],
    *,
    job_queues: Sequence[str],
    claims_per_slot: float,
    default_slots: int,
    finish_rate_per_s: float = 0.0,
    claim_ahead_s: float = 0.0,
) -> FleetCap:
    """The fleet's in-flight bound: ``claims_per_slot`` per live job slot, at least 1,
    or, when more, every slot busy plus ``claim_ahead_s`` of jobs at the fleet's
    ``finish_rate_per_s``.

    Only slots of workers that consume at least one of ``job_queues`` count. With
    no worker reported (none alive yet, or Redis unreadable) the bound assumes
    one worker of ``default_slots``, so dispatch neither stalls nor floods.
    """
    wanted = set(job_queues)
    serving = [w for w in workers if w.slots > 0 and wanted.intersection(w.queues)]
    per_queue = {q: sum(w.slots for w in serving if q in w.queues) for q in job_queues}
    if serving:
        slots, reason = sum(w.slots for w in serving), FLEET_SLOTS
    else:
        slots, reason = max(1, default_slots), FLEET_SLOTS_UNKNOWN
    per_slot = math.floor(slots * claims_per_slot)
    ahead = slots + math.ceil(max(0.0, finish_rate_per_s) * max(0.0, claim_ahead_s))
    capacity = max(1, per_slot, ahead)
    evidence = {
        "workers": len(serving),
        "slots": slots,
        "claims_per_slot": claims_per_slot,
        "finish_rate_per_s": round(finish_rate_per_s, 3),
        "claim_ahead": ahead,
        "per_queue": per_queue,
    }
    return FleetCap(capacity, reason, slots, per_queue, evidence)
