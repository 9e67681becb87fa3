"""What the benchmarks compute from recorded job timings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from fairbeat.scheduling.stats import jain_index, percentile

Event = Mapping[str, float | str]


def max_min_fair(demands: Mapping[str, int], capacity: float) -> dict[str, float]:
    """Water-filling: each gets its demand or an equal share of what is left, whichever is less."""
    share: dict[str, float] = {}
    left = capacity
    pending = sorted(demands.items(), key=lambda item: item[1])
    while pending:
        equal = left / len(pending)
        workspace, demand = pending[0]
        if demand <= equal:
            share[workspace] = float(demand)
            left -= demand
            pending.pop(0)
        else:
            for workspace, _ in pending:
                share[workspace] = equal
            break
    return share


def windowed_jain(events: Sequence[Event], window_s: float) -> float | None:
    """Mean over windows of Jain's index of each backlogged workspace's served / fair share.

    A workspace is backlogged in a window if jobs of it were waiting (enqueued,
    not finished) when the window began; those jobs are its demand, and the
    ones among them that finish in the window are what it was served. Its fair
    share is the max-min fair split of all that was served, given each
    demand: a workspace that wanted little and got it all counts as fair.
    Jobs that arrive during a window count from the next one, since no
    scheduler could have served them before they existed.
    """
    start = min(float(e["enq"]) for e in events)
    end = max(float(e["end"]) for e in events)
    scores = []
    a = start
    while a < end:
        b = a + window_s
        demand: dict[str, int] = defaultdict(int)
        served: dict[str, int] = defaultdict(int)
        for e in events:
            enq, done, ws = float(e["enq"]), float(e["end"]), str(e["ws"])
            if enq < a <= done:
                demand[ws] += 1
                if done < b:
                    served[ws] += 1
        capacity = sum(served.values())
        if len(demand) >= 2 and capacity:
            fair = max_min_fair(demand, capacity)
            index = jain_index([served[w] / fair[w] for w in demand if fair[w] > 0])
            if index is not None:
                scores.append(index)
        a = b
    return sum(scores) / len(scores) if scores else None


def latency_summary(events: Sequence[Event], field: str = "end") -> dict[str, float | None]:
    waits = [float(e[field]) - float(e["enq"]) for e in events]
    p50, p95 = percentile(waits, 0.50), percentile(waits, 0.95)
    return {
        "p50_s": None if p50 is None else round(p50, 4),
        "p95_s": None if p95 is None else round(p95, 4),
    }


def makespan(events: Sequence[Event]) -> float:
    return max(float(e["end"]) for e in events) - min(float(e["enq"]) for e in events)


def slot_utilisation(events: Sequence[Event], slots: int) -> float:
    """Handler time over slot time: jobs' summed start-to-end over ``slots`` times the makespan.

    1.0 means every slot ran a handler from the first enqueue to the last
    finish; what is missing is time a slot spent on anything else (waiting
    for a message, the work around each job) while jobs existed.
    """
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    busy = sum(float(e["end"]) - float(e["start"]) for e in events)
    return busy / (slots * makespan(events))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` rounded to 4 places, as the benchmarks report it."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    return round(numerator / denominator, 4)


def fastest(rates: Mapping[str, float]) -> tuple[str, float]:
    """The system with the highest rate, and that rate."""
    if not rates:
        raise ValueError("rates is empty: give at least one system's rate")
    name = max(rates, key=lambda system: rates[system])
    return name, rates[name]
