"""The benchmark's fairness measure, on hand-made histories."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.metrics import (
    Event,
    fastest,
    makespan,
    max_min_fair,
    ratio,
    slot_utilisation,
    windowed_jain,
)


@given(
    st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 50), min_size=1),
    st.integers(0, 200),
)
def test_max_min_fair_never_exceeds_demand_or_capacity(demands: dict[str, int], cap: int) -> None:
    share = max_min_fair(demands, cap)
    assert all(share[w] <= demands[w] + 1e-9 for w in demands)
    assert sum(share.values()) <= cap + 1e-6
    # Work conserving: all is used, unless every demand is met.
    if sum(demands.values()) >= cap:
        assert abs(sum(share.values()) - cap) < 1e-6


def events(ws: str, n: int, enq: float, first_end: float, gap: float) -> list[Event]:
    return [{"ws": ws, "enq": enq, "end": first_end + i * gap} for i in range(n)]


def test_fifo_behind_a_hot_backlog_is_unfair() -> None:
    # The hot workspace's 100 jobs all run first; the small one's wait meanwhile.
    history = events("hot", 100, 0.0, 0.1, 0.1) + events("small", 5, 0.05, 10.1, 0.1)
    score = windowed_jain(history, 1.0)
    assert score is not None and score < 0.7


def test_serving_the_small_workspace_at_once_is_fair() -> None:
    # The small workspace's jobs wait across a window boundary, then all run at once.
    history = events("hot", 100, 0.0, 0.6, 0.1) + events("small", 5, 0.9, 1.05, 0.1)
    score = windowed_jain(history, 1.0)
    assert score is not None and score > 0.95


def test_no_contention_means_no_score() -> None:
    assert windowed_jain(events("alone", 10, 0.0, 0.5, 0.5), 1.0) is None


def job(enq: float, start: float, end: float) -> Event:
    return {"ws": "w", "enq": enq, "start": start, "end": end}


def test_slots_busy_from_first_enqueue_to_last_finish_are_fully_used() -> None:
    # Two slots, each running two 1 s jobs back to back from t=0 to t=2.
    history = [job(0.0, 0.0, 1.0), job(0.0, 1.0, 2.0), job(0.0, 0.0, 1.0), job(0.0, 1.0, 2.0)]
    assert slot_utilisation(history, 2) == pytest.approx(1.0)


def test_time_around_each_job_counts_against_the_slots() -> None:
    # One slot, 1 s of handler time in a makespan of 4 s (enqueued at 0, ends at 4).
    history = [job(0.0, 0.5, 1.0), job(0.0, 3.5, 4.0)]
    assert makespan(history) == pytest.approx(4.0)
    assert slot_utilisation(history, 1) == pytest.approx(0.25)
    # The same history on four slots used a sixteenth of them.
    assert slot_utilisation(history, 4) == pytest.approx(1 / 16)


def test_slot_utilisation_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1"):
        slot_utilisation([job(0.0, 0.0, 1.0)], 0)


def test_ratio_rounds_and_refuses_a_zero_denominator() -> None:
    assert ratio(21.6, 9.8) == 2.2041
    assert ratio(1.0, 3.0) == 0.3333
    with pytest.raises(ValueError, match="denominator must be positive"):
        ratio(1.0, 0.0)


def test_the_fastest_durable_peer_sets_the_durable_ratio() -> None:
    rates = {"celery_db_backend": 120.5, "procrastinate": 310.0}
    assert fastest(rates) == ("procrastinate", 310.0)
    assert ratio(155.0, fastest(rates)[1]) == 0.5
    with pytest.raises(ValueError, match="rates is empty"):
        fastest({})
