"""The per-job budget bench.profile reports, from two readings of every process's counters.

Pure: the readings (bench.probe's snapshots, CPU ticks, Redis commandstats)
come in as plain data; what comes out is per job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

Snapshot = Mapping[str, Any]  # one process's bench.probe snapshot
ROLES = ("driver", "beat", "worker_main", "worker_children")


def role_of(snapshot: Snapshot, driver_pid: int) -> str:
    """Which process of the fleet a snapshot came from."""
    argv = snapshot["argv"]
    if snapshot["pid"] == driver_pid:
        return "driver"
    if "beat" in argv:
        return "beat"
    if "worker" in argv:
        return "worker_children" if snapshot["forked"] else "worker_main"
    return "other"


def count_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """What each counter gained between two readings; a counter first seen later starts at 0."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def family_delta(
    before: Iterable[Snapshot], after: Iterable[Snapshot], driver_pid: int, family: str
) -> dict[str, dict[str, float]]:
    """Per role, each ``task|key`` counter of ``family`` gained between the readings."""
    earlier = {s["pid"]: s["counts"].get(family, {}) for s in before}
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for snapshot in after:
        gained = count_delta(earlier.get(snapshot["pid"], {}), snapshot["counts"].get(family, {}))
        into = out[role_of(snapshot, driver_pid)]
        for key, value in gained.items():
            into[key] = into.get(key, 0.0) + value
    return dict(out)


def regroup(counts: Mapping[str, float], part: int) -> dict[str, float]:
    """Sum ``a|b|c`` keys by their ``part``-th piece (0: the task, 1: the key, …)."""
    out: dict[str, float] = defaultdict(float)
    for key, value in counts.items():
        out[key.split("|")[part]] += value
    return dict(out)


def per_job(counts: Mapping[str, float], jobs: int, places: int = 3) -> dict[str, float]:
    """Each count divided by ``jobs``, largest first, zeros left out."""
    rows = sorted(counts.items(), key=lambda item: -item[1])
    return {key: round(value / jobs, places) for key, value in rows if value}


def total(counts: Mapping[str, float]) -> float:
    return sum(counts.values())


def slot_time(
    slots: int,
    window_s: float,
    handler_s: float,
    task_s: Mapping[str, float],
    run_task: str,
) -> dict[str, float]:
    """Where ``slots`` times ``window_s`` of worker-process time went, as shares of it.

    ``task_s`` is the time the worker's children spent inside each task
    (``run_task`` is the one that runs jobs); ``handler_s`` the part of that
    spent in the job's own code. The rest is time between tasks: receiving
    and acknowledging messages, and waiting for one.
    """
    slot_s = slots * window_s
    in_run = task_s.get(run_task, 0.0)
    in_other = sum(v for k, v in task_s.items() if k != run_task)
    shares = {
        "handler": handler_s,
        "run_task_around_handler": in_run - handler_s,
        "other_tasks": in_other,
        "between_tasks": slot_s - in_run - in_other,
    }
    return {key: round(value / slot_s, 4) for key, value in shares.items()}


def cpu_ms_per_job(
    before: Mapping[str, float], after: Mapping[str, float], jobs: int
) -> dict[str, float]:
    """CPU milliseconds per job for each process group, from CPU seconds read twice."""
    return {key: round((after[key] - before.get(key, 0.0)) * 1000 / jobs, 3) for key in after}
