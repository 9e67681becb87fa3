"""``--scenario cost``: three backlogged workspaces whose jobs take 5, 20 and 80 ms.

Run once with ``FAIRBEAT_FAIRNESS=count`` and once with ``time`` on real
workers; reports ``fairbeat.time_jain``: the mean over windows of Jain's index
of the worker seconds each backlogged workspace got in the window.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bench import harness
from fairbeat.scheduling.stats import jain_index
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import Settings

JOB_MS = {"cost-05ms": 5.0, "cost-20ms": 20.0, "cost-80ms": 80.0}
WINDOW_S = 1.0


def _backlogged(events: Sequence[dict[str, float]], a: float, b: float) -> set[str]:
    """Workspaces with a job enqueued before the window that had not started by its end."""
    return {str(e["ws"]) for e in events if float(e["enq"]) < a and float(e["start"]) >= b}


def time_jain(events: Sequence[dict[str, float]], window_s: float = WINDOW_S) -> float | None:
    """Mean over windows (with 2+ backlogged workspaces) of Jain's index of worker seconds."""
    if not events:
        return None
    a = min(float(e["start"]) for e in events)  # the backlog was in before the first start
    end = max(float(e["end"]) for e in events)
    scores = []
    while a + window_s <= end:
        b = a + window_s
        busy: dict[str, float] = defaultdict(float)
        for e in events:
            lo, hi = max(a, float(e["start"])), min(b, float(e["end"]))
            if hi > lo:
                busy[str(e["ws"])] += hi - lo
        backlogged = _backlogged(events, a, b)
        if len(backlogged) >= 2:
            index = jain_index([busy[w] for w in sorted(backlogged)])
            scores.append(1.0 if index is None else index)
        a = b
    return round(sum(scores) / len(scores), 4) if scores else None


def _one(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    counts = {"cost-05ms": args.jobs_5ms, "cost-20ms": args.jobs_20ms, "cost-80ms": args.jobs_80ms}
    load = [w for i in range(max(counts.values())) for w in JOB_MS if i < counts[w]]
    results = harness.RESULTS_REDIS
    with harness.fresh_database() as url:
        # The whole backlog is in before the fleet starts: enqueueing must not
        # be what paces the workspaces.
        client = create_app(Settings(**harness.fairbeat_settings(url, fairness=mode)))
        client.loader.import_default_modules()
        for workspace in load:
            payload = {
                "workspace": workspace,
                "ms": JOB_MS[workspace],
                "enqueued_at": time.time(),
                "results": results,
            }
            enqueue(workspace, "bench.work", payload, app=client)
        with harness.fairbeat_fleet(url, fairness=mode):
            time.sleep(args.measure_s)
            events = harness.results(results)
    worker_s: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    for e in events:
        jobs[str(e["ws"])] += 1
        worker_s[str(e["ws"])] += float(e["end"]) - float(e["start"])
    return {
        "time_jain": time_jain(events),
        "worker_s": {w: round(worker_s[w], 2) for w in JOB_MS},
        "jobs": {w: jobs[w] for w in JOB_MS},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    time_model = _one("time", args)
    count_model = _one("count", args)
    return {
        "benchmark": "fairness",
        "scenario": "cost",
        "job_ms": JOB_MS,
        "fairbeat": {"time_jain": time_model["time_jain"], "fairness": "time", **time_model},
        "count_drr": {"fairness": "count", **count_model},
        "target_time_jain": 0.95,
    }
