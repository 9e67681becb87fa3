"""scheduling.schedules: which slots a tick enqueues, over any sequence of ticks."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairbeat.scheduling.schedules import (
    CATCH_UP_ONCE,
    MISSED_CAUGHT_UP,
    MISSED_SKIPPED,
    NOT_DUE,
    ON_TIME,
    SERIES_ENDED,
    SKIP,
    EverySeries,
    SlotSeries,
    first_slot,
    occurrence_key,
    plan_slots,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE_S = 60.0


@dataclass(frozen=True)
class ListSeries:
    """An irregular series, as a cron expression's can be: given slots, sorted."""

    slots: tuple[datetime, ...]

    def after(self, t: datetime) -> datetime | None:
        i = bisect.bisect_right(self.slots, t)
        return self.slots[i] if i < len(self.slots) else None

    def before(self, t: datetime) -> datetime | None:
        i = bisect.bisect_left(self.slots, t)
        return self.slots[i - 1] if i > 0 else None


def run_ticks(
    series: SlotSeries, start: datetime, ticks: list[datetime], missed: str
) -> tuple[list[datetime], list[datetime], datetime | None]:
    """Every tick in turn, as the store would apply them: (enqueued, caught-up, next)."""
    next_slot = first_slot(series, start)
    enqueued: list[datetime] = []
    caught_up: list[datetime] = []
    for now in ticks:
        if next_slot is None:
            break
        plan = plan_slots(series, next_slot=next_slot, now=now, grace_s=GRACE_S, missed=missed)
        for occurrence in plan.occurrences:
            enqueued.append(occurrence.slot)
            if occurrence.catch_up:
                caught_up.append(occurrence.slot)
        if plan.due:
            assert plan.next_slot is None or plan.next_slot > now
        next_slot = plan.next_slot
    return enqueued, caught_up, next_slot


# Gaps between ticks: mostly about the tick interval, sometimes an outage.
gaps = st.lists(
    st.one_of(
        st.floats(min_value=0.0, max_value=3.0),
        st.floats(min_value=GRACE_S, max_value=3 * 3600.0),
    ),
    min_size=1,
    max_size=40,
)


def ticks_from(start: datetime, gap_s: list[float]) -> list[datetime]:
    ticks, now = [], start
    for gap in gap_s:
        now += timedelta(seconds=gap)
        ticks.append(now)
    return ticks


def slots_between(series: SlotSeries, start: datetime, end: datetime) -> list[datetime]:
    slots, slot = [], series.after(start)
    while slot is not None and slot <= end:
        slots.append(slot)
        slot = series.after(slot)
    return slots


@settings(max_examples=200)
@given(
    every_s=st.integers(min_value=1, max_value=900),
    gap_s=gaps,
    missed=st.sampled_from([SKIP, CATCH_UP_ONCE]),
)
def test_each_slot_gets_at_most_one_job_and_jobs_go_forward(
    every_s: int, gap_s: list[float], missed: str
) -> None:
    series = EverySeries(every_s)
    ticks = ticks_from(T0, gap_s)
    enqueued, _, _ = run_ticks(series, T0, ticks, missed)
    assert enqueued == sorted(set(enqueued)), "a slot twice, or out of order"
    every_slot = set(slots_between(series, T0, ticks[-1]))
    assert set(enqueued) <= every_slot


@settings(max_examples=200)
@given(every_s=st.integers(min_value=1, max_value=900), gap_s=gaps)
def test_with_catch_up_no_slot_is_skipped(every_s: int, gap_s: list[float]) -> None:
    # Every slot up to the last tick has its own job, or is covered by the one
    # catch-up job at or after it (and before the next job).
    series = EverySeries(every_s)
    ticks = ticks_from(T0, gap_s)
    enqueued, caught_up, _ = run_ticks(series, T0, ticks, CATCH_UP_ONCE)
    for slot in slots_between(series, T0, ticks[-1]):
        i = bisect.bisect_left(enqueued, slot)
        assert i < len(enqueued), f"slot {slot} has no job"
        assert enqueued[i] == slot or enqueued[i] in caught_up, f"slot {slot} was skipped"


@settings(max_examples=200)
@given(
    offsets=st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=60),
    gap_s=gaps,
    missed=st.sampled_from([SKIP, CATCH_UP_ONCE]),
)
def test_an_irregular_series_keeps_the_same_promises(
    offsets: list[int], gap_s: list[float], missed: str
) -> None:
    series = ListSeries(tuple(sorted({T0 + timedelta(seconds=s) for s in offsets})))
    ticks = ticks_from(T0, gap_s)
    enqueued, caught_up, _ = run_ticks(series, T0, ticks, missed)
    assert enqueued == sorted(set(enqueued))
    if missed == SKIP:
        assert not caught_up
        return
    for slot in slots_between(series, T0, ticks[-1]):
        i = bisect.bisect_left(enqueued, slot)
        assert i < len(enqueued) and (enqueued[i] == slot or enqueued[i] in caught_up)


@settings(max_examples=200)
@given(every_s=st.integers(min_value=1, max_value=900), gap_s=gaps)
def test_with_skip_no_job_is_for_a_slot_older_than_the_grace(
    every_s: int, gap_s: list[float]
) -> None:
    series = EverySeries(every_s)
    next_slot = first_slot(series, T0)
    for now in ticks_from(T0, gap_s):
        assert next_slot is not None
        plan = plan_slots(series, next_slot=next_slot, now=now, grace_s=GRACE_S, missed=SKIP)
        for occurrence in plan.occurrences:
            assert now - timedelta(seconds=GRACE_S) <= occurrence.slot <= now
        next_slot = plan.next_slot


def test_ticks_within_the_grace_give_every_slot_its_own_job() -> None:
    # Given an every-second schedule, when ticks come 0.7-1.6 s apart,
    # then each elapsed slot has exactly one job, with either policy.
    series = EverySeries(1)
    ticks = ticks_from(T0, [0.7, 1.6, 1.1, 0.9, 1.5, 0.8] * 10)
    for missed in (SKIP, CATCH_UP_ONCE):
        enqueued, caught_up, _ = run_ticks(series, T0, ticks, missed)
        assert enqueued == slots_between(series, T0, ticks[-1]) and not caught_up


def test_a_long_outage_is_skipped_or_caught_up_once() -> None:
    series = EverySeries(60)
    next_slot = T0 + timedelta(minutes=1)
    now = T0 + timedelta(hours=5, seconds=30)
    skip = plan_slots(series, next_slot=next_slot, now=now, grace_s=GRACE_S, missed=SKIP)
    assert skip.reason_code == MISSED_SKIPPED
    # The slot 30 s ago is still on time; the three hundred before it were missed.
    assert [o.slot for o in skip.occurrences] == [T0 + timedelta(hours=5)]
    catch = plan_slots(series, next_slot=next_slot, now=now, grace_s=GRACE_S, missed=CATCH_UP_ONCE)
    assert catch.reason_code == MISSED_CAUGHT_UP
    assert [(o.slot, o.catch_up) for o in catch.occurrences] == [
        (T0 + timedelta(hours=4, minutes=59), True),
        (T0 + timedelta(hours=5), False),
    ]
    assert catch.next_slot == skip.next_slot == T0 + timedelta(hours=5, minutes=1)
    assert catch.last_slot == T0 + timedelta(hours=5)
    assert catch.evidence["missed_until"] == "2026-12-01T16:59:00Z"


def test_a_slot_not_yet_come_is_not_due() -> None:
    plan = plan_slots(
        EverySeries(60), next_slot=T0, now=T0 - timedelta(seconds=1), grace_s=GRACE_S, missed=SKIP
    )
    assert plan.reason_code == NOT_DUE and not plan.occurrences and plan.next_slot == T0


def test_the_slot_at_now_is_on_time() -> None:
    plan = plan_slots(EverySeries(60), next_slot=T0, now=T0, grace_s=GRACE_S, missed=SKIP)
    assert plan.reason_code == ON_TIME and [o.slot for o in plan.occurrences] == [T0]


def test_a_series_that_ends_says_so() -> None:
    series = ListSeries((T0,))
    plan = plan_slots(series, next_slot=T0, now=T0, grace_s=GRACE_S, missed=SKIP)
    assert plan.reason_code == SERIES_ENDED and plan.next_slot is None
    assert [o.slot for o in plan.occurrences] == [T0]


def test_interval_slots_are_aligned_to_the_epoch() -> None:
    series = EverySeries(60)
    assert series.after(T0) == T0 + timedelta(minutes=1)
    assert series.before(T0) == T0 - timedelta(minutes=1)
    assert series.after(T0 - timedelta(microseconds=1)) == T0
    assert series.before(T0 + timedelta(microseconds=1)) == T0


def test_the_dedupe_key_names_schedule_and_slot() -> None:
    assert occurrence_key(12, T0) == "schedule:12:2026-12-01T12:00:00Z"


def test_a_bad_policy_or_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="missed must be one of"):
        plan_slots(EverySeries(1), next_slot=T0, now=T0, grace_s=1, missed="sometimes")
    with pytest.raises(ValueError, match="every_s must be at least 1"):
        EverySeries(0)
