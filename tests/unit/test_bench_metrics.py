"""The benchmark's fairness measure, on hand-made histories."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.metrics import Event, max_min_fair, windowed_jain


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
