"""Per-workspace start rate limits, by GCRA (the generic cell rate algorithm).

The whole state is one number per workspace, its theoretical arrival time
(TAT): when the next start would be on schedule at exactly the rate. A burst
of ``burst`` starts is allowed ahead of schedule, no more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def burst_for(rate_per_s: float) -> int:
    """One second's worth of starts, at least one."""
    return max(1, math.ceil(rate_per_s))


def _tat(tat_s: float | None, now_s: float) -> float:
    """The TAT to go on: one that is missing or not a finite number (a Redis value
    written by hand) restarts the schedule now instead of failing the tick."""
    if tat_s is None or not math.isfinite(tat_s):
        return now_s
    return max(tat_s, now_s)


def available(*, now_s: float, tat_s: float | None, rate_per_s: float, burst: int) -> int:
    """How many starts the limit allows right now."""
    interval = 1.0 / rate_per_s
    tat = _tat(tat_s, now_s)
    return max(0, math.floor((now_s + burst * interval - tat) / interval + 1e-9))


def consume(*, now_s: float, tat_s: float | None, rate_per_s: float, n: int) -> float:
    """The TAT after ``n`` starts now."""
    return _tat(tat_s, now_s) + n / rate_per_s


def allowances(
    limits: Mapping[str, float], tats: Mapping[str, float], now_s: float
) -> dict[str, int]:
    """Starts each rate-limited workspace may take now."""
    return {
        w: available(now_s=now_s, tat_s=tats.get(w), rate_per_s=rate, burst=burst_for(rate))
        for w, rate in limits.items()
    }


def consumed(
    limits: Mapping[str, float],
    tats: Mapping[str, float],
    started: Mapping[str, int],
    now_s: float,
) -> dict[str, float]:
    """The TATs after ``started`` starts now, for the rate-limited workspaces."""
    return {
        w: consume(now_s=now_s, tat_s=tats.get(w), rate_per_s=limits[w], n=n)
        for w, n in started.items()
        if w in limits
    }
