"""A hot workspace bursts thousands of short jobs, then many small workspaces enqueue a few.

fairbeat against plain Celery (the same handler sent with .delay to one
queue), on the same Redis and worker settings:

    python -m bench.fairness --json
    python -m bench.fairness --scenario cost --json   # fair by worker time (bench/fairness_cost.py)
    python -m bench.fairness --scenario priority --json  # classes (bench/fairness_priority.py)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench import fairness_cost, fairness_priority, harness
from bench.metrics import latency_summary, makespan, ratio, slot_utilisation, windowed_jain
from fairbeat.tasks.api import enqueue

WINDOW_S = 0.5
SLOTS = 4  # one worker of concurrency 4, for both systems


def _load(args: argparse.Namespace) -> list[str]:
    hot = ["hot"] * args.hot
    small = [f"small-{w:02d}" for w in range(args.small_workspaces) for _ in range(args.small_jobs)]
    return hot + small


def _measure(submit: Callable[[str, float], None], load: list[str]) -> dict[str, Any]:
    for workspace in load:
        submit(workspace, time.time())
    events = harness.wait_results(len(load))
    small = [e for e in events if str(e["ws"]).startswith("small-")]
    summary = latency_summary(small)
    jain = windowed_jain(events, WINDOW_S)
    return {
        "small_p50_s": summary["p50_s"],
        "small_p95_s": summary["p95_s"],
        "jain": None if jain is None else round(jain, 4),  # None: no window had contention
        "makespan_s": round(makespan(events), 3),
        "slot_utilisation": round(slot_utilisation(events, SLOTS), 4),
        "jobs": len(events),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load = _load(args)
    results = harness.RESULTS_REDIS
    with harness.fresh_database() as url, harness.fairbeat_fleet(url) as app:

        def fairbeat_submit(workspace: str, now: float) -> None:
            payload = {
                "workspace": workspace,
                "ms": args.job_ms,
                "enqueued_at": now,
                "results": results,
            }
            enqueue(workspace, "bench.work", payload, app=app)

        fairbeat = _measure(fairbeat_submit, load)
    with harness.plain_worker() as plain:

        def celery_submit(workspace: str, now: float) -> None:
            plain.send_task("plain.work", args=(workspace, args.job_ms, now, results))

        celery = _measure(celery_submit, load)
    return {
        "benchmark": "fairness",
        "hot_jobs": args.hot,
        "small_workspaces": args.small_workspaces,
        "small_jobs_each": args.small_jobs,
        "job_ms": args.job_ms,
        "fairbeat": fairbeat,
        "celery": celery,
        "small_p95_ratio": ratio(fairbeat["small_p95_s"], celery["small_p95_s"]),
        "makespan_ratio": ratio(fairbeat["makespan_s"], celery["makespan_s"]),
        "slot_utilisation": fairbeat["slot_utilisation"],
    }


def _render(data: dict[str, Any]) -> None:
    for system in ("fairbeat", "celery"):
        print(system, data[system])
    for measure in ("small_p95_ratio", "makespan_ratio", "slot_utilisation"):
        print(measure, data[measure])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scenario", choices=("burst", "cost", "priority"), default="burst")
    parser.add_argument("--jobs-5ms", type=int, default=3000)
    parser.add_argument("--jobs-20ms", type=int, default=800)
    parser.add_argument("--jobs-80ms", type=int, default=500)
    parser.add_argument("--measure-s", type=float, default=10.0, help="cost: after enqueueing")
    parser.add_argument("--hot", type=int, default=3000)
    parser.add_argument("--small-workspaces", type=int, default=20)
    parser.add_argument("--small-jobs", type=int, default=3)
    parser.add_argument("--job-ms", type=float, default=10.0)
    parser.add_argument("--flood", type=int, default=2000, help="priority: bulk jobs")
    parser.add_argument("--critical-jobs", type=int, default=40)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--critical-after-s", type=float, default=1.0)
    parser.add_argument("--burst-every-s", type=float, default=0.5)
    args = parser.parse_args()
    scenarios = {"cost": fairness_cost.run, "priority": fairness_priority.run}
    with harness.redis_databases():
        data = scenarios.get(args.scenario, run)(args)
    harness.emit(data, args.json, _render if args.scenario == "burst" else print)


if __name__ == "__main__":
    main()
