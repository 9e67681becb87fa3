"""Which occurrences of a schedule a scheduler tick enqueues, and where it goes on from.

A schedule is a series of slots (UTC instants). The edge asks the cron
library for them and hands the answers in as a :class:`SlotSeries`; fixed
intervals are plain arithmetic here (:class:`EverySeries`). A tick at ``now``
looks at the slots from the schedule's ``next_slot`` up to ``now``:

- a slot no older than ``grace_s`` is *on time*: it gets a job of its own;
- an older one was *missed* (beat or the workers were down, the schedule was
  paused): ``skip`` enqueues none of them, ``catch_up_once`` one job for all
  of them, keyed by the latest missed slot.

Either way the schedule moves on to the first slot after ``now``, so no slot
is looked at twice, and each job's dedupe key names its schedule and slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

SKIP = "skip"
CATCH_UP_ONCE = "catch_up_once"
MISSED_POLICIES = (SKIP, CATCH_UP_ONCE)

# Reason codes of a plan.
NOT_DUE = "NOT_DUE"  # the next slot is still ahead
ON_TIME = "ON_TIME"  # every due slot was on time: one job each
MISSED_SKIPPED = "MISSED_SKIPPED"  # missed slots got no job (policy skip)
MISSED_CAUGHT_UP = "MISSED_CAUGHT_UP"  # missed slots got one job together (catch_up_once)
SERIES_ENDED = "SERIES_ENDED"  # the series has no slot after now (a cron that never fires again)

# A bound on one tick's work: past it the rest of the on-time slots wait for
# the next tick (nothing is lost; next_slot stays at the first one not taken).
MAX_SLOTS_PER_TICK = 5000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SLOT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class SlotSeries(Protocol):
    """The slots of one schedule, as aware datetimes (any zone; compared as instants)."""

    def after(self, t: datetime) -> datetime | None:
        """The first slot strictly after ``t``; None if there is none."""
        ...

    def before(self, t: datetime) -> datetime | None:
        """The last slot strictly before ``t``; None if there is none."""
        ...


@dataclass(frozen=True)
class EverySeries:
    """Every ``every_s`` seconds, on the multiples of ``every_s`` since the Unix epoch.

    Aligned to the epoch rather than to when the schedule was made, so that
    ``every 60`` fires on the minute and every process computes the same slots.
    """

    every_s: int

    def __post_init__(self) -> None:
        if self.every_s < 1:
            raise ValueError(f"every_s must be at least 1, got {self.every_s}")

    def after(self, t: datetime) -> datetime:
        step = timedelta(seconds=self.every_s)
        return EPOCH + ((t - EPOCH) // step + 1) * step

    def before(self, t: datetime) -> datetime:
        step = timedelta(seconds=self.every_s)
        ceiling = -((EPOCH - t) // step)
        return EPOCH + (ceiling - 1) * step


@dataclass(frozen=True)
class Occurrence:
    slot: datetime
    catch_up: bool  # True: the one job standing for every missed slot up to ``slot``


@dataclass(frozen=True)
class SlotPlan:
    """What one tick does for one schedule: the jobs to enqueue, and the slot to go on from."""

    occurrences: tuple[Occurrence, ...]
    next_slot: datetime | None  # None: the series has no further slot
    last_slot: datetime | None  # the latest slot this plan dealt with, None if none
    reason_code: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def due(self) -> bool:
        return self.reason_code != NOT_DUE


def slot_text(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime(SLOT_FORMAT)


def occurrence_key(schedule_id: int, slot: datetime) -> str:
    """The dedupe key of a slot's job: one job per (schedule, slot), whoever enqueues it."""
    return f"schedule:{schedule_id}:{slot_text(slot)}"


def first_slot(series: SlotSeries, now: datetime) -> datetime | None:
    """A new (or resumed-from-scratch) schedule's first slot: the first after ``now``."""
    return series.after(now)


def plan_slots(
    series: SlotSeries,
    *,
    next_slot: datetime,
    now: datetime,
    grace_s: float,
    missed: str,
) -> SlotPlan:
    """The occurrences due at ``now`` for a schedule whose next slot is ``next_slot``."""
    if missed not in MISSED_POLICIES:
        raise ValueError(f"missed must be one of {MISSED_POLICIES}, got {missed!r}")
    if next_slot > now:
        return SlotPlan((), next_slot, None, NOT_DUE, {"next_slot": slot_text(next_slot)})
    cutoff = now - timedelta(seconds=grace_s)
    missed_latest = _latest_missed(series, next_slot, cutoff)
    start = next_slot if missed_latest is None else series.after(missed_latest)
    on_time, following = _on_time(series, start, now)
    occurrences = [Occurrence(slot, catch_up=False) for slot in on_time]
    if missed_latest is not None and missed == CATCH_UP_ONCE:
        occurrences.insert(0, Occurrence(missed_latest, catch_up=True))
    last = on_time[-1] if on_time else missed_latest
    evidence: dict[str, Any] = {
        "from_slot": slot_text(next_slot),
        "now": slot_text(now),
        "grace_s": grace_s,
        "on_time": len(on_time),
        "policy": missed,
    }
    if missed_latest is not None:
        evidence["missed_until"] = slot_text(missed_latest)
    reason = _reason(missed_latest is not None, missed, following is None)
    return SlotPlan(tuple(occurrences), following, last, reason, evidence)


def _latest_missed(series: SlotSeries, next_slot: datetime, cutoff: datetime) -> datetime | None:
    if next_slot >= cutoff:
        return None
    latest = series.before(cutoff)
    # next_slot is itself a slot before the cutoff, so the latest is at least it.
    return next_slot if latest is None or latest < next_slot else latest


def _on_time(
    series: SlotSeries, start: datetime | None, now: datetime
) -> tuple[list[datetime], datetime | None]:
    """The slots from ``start`` up to ``now``, and the first one after them."""
    slots: list[datetime] = []
    slot = start
    while slot is not None and slot <= now and len(slots) < MAX_SLOTS_PER_TICK:
        slots.append(slot)
        following = series.after(slot)
        if following is not None and following <= slot:
            raise ValueError(f"the series went backwards: {following} after {slot}")
        slot = following
    return slots, slot


def _reason(had_missed: bool, missed: str, ended: bool) -> str:
    if ended:
        return SERIES_ENDED
    if not had_missed:
        return ON_TIME
    return MISSED_CAUGHT_UP if missed == CATCH_UP_ONCE else MISSED_SKIPPED
