"""Window statistics: percentiles and Jain's fairness index."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def jain_index(allocations: Sequence[float]) -> float | None:
    """(Σx)² / (n·Σx²): 1.0 when all are equal, 1/n when one takes everything."""
    if not allocations:
        return None
    total = sum(allocations)
    squares = sum(x * x for x in allocations)
    if squares == 0:
        return 1.0
    return total * total / (len(allocations) * squares)


def peak_concurrency(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one instant; an end frees before a start."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak
