"""The Redis live state: the fenced dispatch lease, the writes only its holder may make,
kicks and the fair-share state."""

from __future__ import annotations

import redis

from fairbeat.scheduling.fair import FairState
from fairbeat.store.control import ControlState
from fairbeat.store.keys import Keys
from fairbeat.store.lease import HOLDER_CHECK
from fairbeat.store.live import LiveState
from fairbeat.store.lua import (
    DELETE_IF_UNCHANGED,
    RELEASE_LEASE,
    RENEW_LEASE,
    SAVE_FAIR_STATE,
    SET_IF_HOLDER,
)


def live(client: redis.Redis) -> LiveState:
    return LiveState(client, Keys("fbtest"))


def test_the_lease_is_single_flight_and_fenced(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    first = state.acquire_dispatch(lease_ms=10_000)
    assert first is not None
    assert state.acquire_dispatch(lease_ms=10_000) is None
    assert state.renew_dispatch(first, 10_000)
    assert not state.release_dispatch(first + 1)  # not the holder
    assert state.release_dispatch(first)
    second = state.acquire_dispatch(lease_ms=10_000)
    assert second is not None and second > first
    assert not state.renew_dispatch(first, 10_000)  # superseded


def test_an_expired_lease_passes_to_a_successor_with_a_higher_fence(
    redis_client: redis.Redis,
) -> None:
    state = live(redis_client)
    stale = state.acquire_dispatch(lease_ms=10_000)
    assert stale is not None
    redis_client.delete(state.keys.dispatch_lock)  # the lease ran out
    successor = state.acquire_dispatch(lease_ms=10_000)
    assert successor is not None and successor > stale
    # The stale holder can neither extend, release, nor write fair state.
    assert not state.renew_dispatch(stale, 10_000)
    assert not state.release_dispatch(stale)
    assert not state.save_fair_state(stale, FairState({"a": 1.0}, "a"))
    assert state.save_fair_state(successor, FairState({"b": 0.5}, "b", resume=True))
    assert state.load_fair_state() == FairState({"b": 0.5}, "b", resume=True)


def test_fair_state_round_trips_and_starts_empty(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    assert state.load_fair_state() == FairState()
    fence = state.acquire_dispatch(10_000)
    assert fence is not None
    assert state.save_fair_state(fence, FairState({}, None))
    assert state.load_fair_state() == FairState()


def test_kicks_are_debounced_but_always_counted(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    assert state.kick(debounce_ms=10_000)
    assert not state.kick(debounce_ms=10_000)
    assert state.kick_seq() == 2
    assert state.unseen_kicks()
    state.mark_kicks_seen(2)
    assert not state.unseen_kicks()


def test_a_kick_while_a_run_holds_the_lease_only_counts(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    fence = state.acquire_dispatch(10_000)
    assert fence is not None
    assert not state.kick(debounce_ms=10_000)  # the holder re-reads the sequence
    assert state.kick_seq() == 1
    state.release_dispatch(fence)
    assert state.kick(debounce_ms=10_000)  # the debounce was not spent while held
    assert state.kick_seq() == 2


def test_quotas_read_ladder_and_pins(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    redis_client.hset(state.keys.ladder_quota, mapping={"a": 64, "b": 100})
    redis_client.hset(state.keys.quota_pins, mapping={"b": 5})
    assert state.quotas(["a", "b", "c"]) == ({"a": 64, "b": 100}, {"b": 5})
    assert state.quotas([]) == ({}, {})


def test_only_the_lease_holder_writes_the_autoscale_state(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    control = ControlState(redis_client, state.keys)
    holder = state.acquire_dispatch(lease_ms=10_000)
    assert holder is not None
    assert not control.save_autoscale_state({"capacity": 1}, fence=holder + 1)
    assert control.save_autoscale_state({"capacity": 8}, fence=holder)
    state.release_dispatch(holder)
    assert not control.save_autoscale_state({"capacity": 2}, fence=holder)  # lease given back
    assert control.autoscale_state() == {"capacity": 8}


def test_a_one_shot_capacity_step_is_cleared_only_if_unchanged(redis_client: redis.Redis) -> None:
    control = ControlState(redis_client, Keys("fbtest"))
    control.set_capacity_override({"step": -8})
    control.clear_capacity_step({"step": 4})  # an override applied earlier, since replaced
    assert control.capacity_override() == {"step": -8}
    control.clear_capacity_step({"step": -8})
    assert control.capacity_override() == {}


def test_every_holder_script_starts_with_the_one_lease_check() -> None:
    for script in (RENEW_LEASE, RELEASE_LEASE, SAVE_FAIR_STATE, SET_IF_HOLDER, DELETE_IF_UNCHANGED):
        assert script.startswith(HOLDER_CHECK)
        assert script.count("redis.call('GET', KEYS[1])") == 1


def test_the_per_class_fair_state_round_trips(redis_client: redis.Redis) -> None:
    state = live(redis_client)
    fence = state.acquire_dispatch(lease_ms=10_000)
    assert fence is not None
    kept = FairState(
        {"a": 0.5},
        "a",
        turn=7,
        by_class={"bulk": FairState({"b": 0.25}, "b", resume=True), "critical": FairState()},
        class_credit={"bulk": 0.4},
    )
    assert state.save_fair_state(fence, kept)
    assert state.load_fair_state() == kept
