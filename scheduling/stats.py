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
