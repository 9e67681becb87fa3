"""The dispatcher's pure pieces: the fleet bound, the carried autoscale state,
quota resolution, and the typed tick and run reports."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling import autoscale
from fairbeat.scheduling.autoscale import CapacityDecision, next_state, smoothed_contention
from fairbeat.scheduling.fleet import FLEET_SLOTS, FLEET_SLOTS_UNKNOWN, WorkerSlots, fleet_cap
from fairbeat.scheduling.quota import WorkspaceProfile, rate_limit_of, resolve_quotas
from fairbeat.scheduling.reasons import (
    BACKPRESSURE,
    GLOBAL_CAPACITY,
    GUARDRAIL_STEP_DOWN,
    PARTITION_CAP,
)
from fairbeat.scheduling.tick import REPORT_TICKS, RunReport, TickReport, more_room

QUEUES = ("jobs.default", "jobs.email")
workers = st.lists(
    st.builds(
        WorkerSlots,
        hostname=st.text(min_size=1, max_size=8),
        slots=st.integers(0, 64),
        queues=st.lists(st.sampled_from([*QUEUES, "fairbeat.control"]), max_size=3).map(tuple),
    ),
    max_size=6,
)


@given(workers, st.floats(1, 10), st.integers(1, 64))
def test_the_fleet_bound_is_a_multiple_of_the_live_job_slots(
    fleet: list[WorkerSlots], per_slot: float, default: int
) -> None:
    cap = fleet_cap(fleet, job_queues=QUEUES, claims_per_slot=per_slot, default_slots=default)
    serving = [w for w in fleet if w.slots and set(w.queues) & set(QUEUES)]
    slots = sum(w.slots for w in serving) if serving else default
    assert cap.reason_code == (FLEET_SLOTS if serving else FLEET_SLOTS_UNKNOWN)
    assert cap.slots == slots
    assert 1 <= cap.capacity <= max(1, slots * per_slot)
    assert cap.capacity >= slots  # never below one job per slot: no slot idles for it
    for queue, n in cap.per_queue.items():
        assert n == sum(w.slots for w in serving if queue in w.queues)


@given(workers, st.floats(1, 10), st.floats(0, 5000), st.floats(0, 5))
def test_the_fleet_claims_ahead_what_it_finishes_in_the_claim_ahead_time(
    fleet: list[WorkerSlots], per_slot: float, rate: float, ahead_s: float
) -> None:
    plain = fleet_cap(fleet, job_queues=QUEUES, claims_per_slot=per_slot, default_slots=4)
    cap = fleet_cap(
        fleet,
        job_queues=QUEUES,
        claims_per_slot=per_slot,
        default_slots=4,
        finish_rate_per_s=rate,
        claim_ahead_s=ahead_s,
    )
    assert cap.slots == plain.slots
    # Never less than the per-slot bound; more only by the work finished in ahead_s.
    assert cap.capacity == max(plain.capacity, cap.slots + math.ceil(rate * ahead_s))


def test_a_fleet_finishing_fast_gets_its_next_jobs_claimed_ahead() -> None:
    fleet = [WorkerSlots("w1", 4, ("jobs.default",))]
    idle = fleet_cap(fleet, job_queues=QUEUES, claims_per_slot=2, default_slots=4)
    busy = fleet_cap(
        fleet,
        job_queues=QUEUES,
        claims_per_slot=2,
        default_slots=4,
        finish_rate_per_s=200.0,  # 4 slots of 20 ms jobs
        claim_ahead_s=0.25,
    )
    assert (idle.capacity, busy.capacity) == (8, 54)  # 4 running + 50 (a quarter second's)
    assert busy.evidence["finish_rate_per_s"] == 200.0 and busy.evidence["claim_ahead"] == 54


def test_a_control_only_worker_adds_no_job_slots() -> None:
    fleet = [WorkerSlots("ctl", 8, ("fairbeat.control",)), WorkerSlots("w1", 2, ("jobs.default",))]
    cap = fleet_cap(fleet, job_queues=QUEUES, claims_per_slot=2, default_slots=4)
    assert (cap.capacity, cap.reason_code, cap.slots) == (4, FLEET_SLOTS, 2)
    assert cap.per_queue == {"jobs.default": 2, "jobs.email": 0}
    assert FLEET_SLOTS in BACKPRESSURE


def test_no_worker_reported_assumes_one_worker() -> None:
    cap = fleet_cap([], job_queues=QUEUES, claims_per_slot=2, default_slots=4)
    assert (cap.capacity, cap.reason_code) == (8, FLEET_SLOTS_UNKNOWN)


@given(st.one_of(st.none(), st.floats(0, 1)), st.integers(0, 100), st.integers(0, 100))
def test_contention_is_a_bounded_average(previous: float | None, planned: int, lost: int) -> None:
    lost = min(lost, planned)
    got = smoothed_contention(previous, planned, lost)
    if not planned:
        assert got == previous
    else:
        assert got is not None and 0 <= got <= 1
        low, high = sorted([lost / planned, lost / planned if previous is None else previous])
        assert low - 1e-9 <= got <= high + 1e-9


def test_the_carried_state_keeps_a_guardrail_named_through_its_cooldown() -> None:
    hold = CapacityDecision(18, autoscale.HOLD_COOLDOWN, 3, {})
    state = {"reason": autoscale.STEP_DOWN_ERROR_GUARDRAIL, "last_step_down_s": 5.0}
    new = next_state(hold, state, now_s=10.0, planned=4, lost=1)
    assert new is not None
    assert new["reason"] == autoscale.STEP_DOWN_ERROR_GUARDRAIL
    assert new["last_step_down_s"] == 5.0 and new["contention"] == 0.25
    assert autoscale.held_by(hold, state) == GUARDRAIL_STEP_DOWN
    step = CapacityDecision(18, autoscale.STEP_DOWN_ERROR_GUARDRAIL, 3, {})
    stepped = next_state(step, {}, now_s=10.0, planned=0, lost=0)
    assert stepped is not None and stepped["last_step_down_s"] == 10.0
    fixed = autoscale.fixed_capacity(32, autoscale.FIXED_CAPACITY, 4)
    assert next_state(fixed, {}, now_s=1.0, planned=1, lost=0) is None
    assert autoscale.held_by(fixed, {}) == GLOBAL_CAPACITY


def test_quotas_weights_and_rate_limits_come_from_the_profile() -> None:
    profiles = {
        "big": WorkspaceProfile("enterprise", 2.0, high_quota_enabled=True),
        "own": WorkspaceProfile(rate_limit_per_s=0.0),
    }
    got = resolve_quotas(
        ["big", "own", "new"],
        profiles,
        ladder={"big": 100},
        pins={"new": 3},
        ladder_available=True,
        tier_quotas={"default": 16, "enterprise": 64},
        tier_weights={"enterprise": 2.0},
    )
    assert {w: q.quota for w, q in got.quotas.items()} == {"big": 100, "own": 16, "new": 3}
    assert got.weights == {"big": 4.0, "own": 1.0, "new": 1.0}
    limits = {"default": 5.0}
    assert rate_limit_of(profiles["own"], limits) is None  # its own 0 means "no limit"
    assert rate_limit_of(WorkspaceProfile(), limits) == 5.0


def test_reports_round_trip_through_their_stored_json() -> None:
    ticks = [TickReport("PLANNED", claimed=n, sent=n, unclaimed={"X": 1}) for n in range(25)]
    run = RunReport.of("beat", 7, ticks)
    stored = json.loads(json.dumps(run.to_dict()))
    assert RunReport.from_dict(stored) == run
    assert run.claimed == sum(range(25)) and len(run.last_ticks) == REPORT_TICKS
    assert RunReport.skip("BUSY").to_dict() == {"skipped": "BUSY"}
    # A row written before a field existed still reads, the field at its default.
    old = RunReport.from_dict({"claimed": 3, "last_ticks": [{"claimed": 3, "unknown": 1}]})
    assert old.claimed == 3 and old.last_ticks[0].fleet_reason == ""


def test_a_tick_goes_again_at_once_only_when_it_left_room_to_a_capped_workspace() -> None:
    capped = TickReport(
        claimed=10,
        planned=10,
        capacity=32,
        fleet_capacity=30,
        in_flight=4,
        unclaimed={PARTITION_CAP: 1},
    )
    assert more_room(capped, batch=20)  # one busy workspace, room for 16 more
    assert more_room(TickReport(claimed=20, planned=20), batch=20)  # the batch filled
    assert not more_room(replace(capped, in_flight=20), batch=20)  # the room was used
    assert not more_room(replace(capped, unclaimed={}), batch=20)  # nothing more is due
    assert not more_room(replace(capped, claimed=9), batch=20)  # a claim was lost
    assert not more_room(replace(capped, claimed=0, planned=0), batch=20)  # quota-held
