"""The pending limit with fewer counts (scheduling/backlog.py): one process
alone never passes the limit and is refused exactly at it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.backlog import RECOUNT_AT_LEAST_EVERY, uncounted_after


def _enqueue_until_refused(
    limit: int, pending: int, drains: list[int]
) -> tuple[int, int, int, int]:
    """One process enqueueing with the rule while the dispatcher takes ``drains``
    jobs before each enqueue: (accepted, counts, highest pending, pending at refusal)."""
    counts = uncounted = 0
    highest = pending
    for step in range(10 * limit + 10):
        pending = max(0, pending - (drains[step] if step < len(drains) else 0))
        if uncounted > 0:
            uncounted -= 1
        else:
            counts += 1
            if pending >= limit:
                return step, counts, highest, pending  # every step before was accepted
            uncounted = uncounted_after(limit, pending)
        pending += 1
        highest = max(highest, pending)
    raise AssertionError("never refused")


@given(st.integers(1, 5000), st.data())
def test_one_process_never_passes_the_limit_and_is_refused_exactly_at_it(
    limit: int, data: st.DataObject
) -> None:
    pending = data.draw(st.integers(0, limit))
    accepted, counts, highest, at_refusal = _enqueue_until_refused(limit, pending, [])
    assert accepted == limit - pending
    assert highest <= limit and at_refusal == limit
    # The count is the cost saved: far fewer than one per enqueue on a long run.
    assert counts <= accepted // RECOUNT_AT_LEAST_EVERY + 2 * limit.bit_length() + 2


@given(st.integers(1, 500), st.lists(st.integers(0, 3), max_size=200))
def test_with_the_dispatcher_taking_jobs_the_limit_still_holds(
    limit: int, drains: list[int]
) -> None:
    _, _, highest, at_refusal = _enqueue_until_refused(limit, 0, drains)
    assert highest <= limit and at_refusal == limit


def test_the_room_is_halved_and_bounded() -> None:
    assert uncounted_after(10_000, 0) == RECOUNT_AT_LEAST_EVERY
    assert uncounted_after(10, 0) == 4  # 9 left after its own job: skip 4, then count
    assert uncounted_after(3, 2) == 0  # its own job fills the workspace: count next time
