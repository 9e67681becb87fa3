"""No-op jobs per second end to end, enqueue to finish: fairbeat against plain Celery.

python -m bench.throughput --json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench import harness
from bench.metrics import makespan
from fairbeat.tasks.api import enqueue


def _measure(submit: Callable[[int, float], None], jobs: int) -> dict[str, Any]:
    for n in range(jobs):
        submit(n, time.time())
    events = harness.wait_results(jobs)
    seconds = makespan(events)
    return {"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_s": round(jobs / seconds, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = harness.RESULTS_REDIS
    with harness.fresh_database() as url, harness.fairbeat_fleet(url) as app:

        def fairbeat_submit(n: int, now: float) -> None:
            workspace = f"ws{n % args.workspaces}"
            payload = {"workspace": workspace, "ms": 0, "enqueued_at": now, "results": results}
            enqueue(workspace, "bench.work", payload, app=app)

        fairbeat = _measure(fairbeat_submit, args.jobs)
    with harness.plain_worker() as plain:

        def celery_submit(n: int, now: float) -> None:
            plain.send_task("plain.work", args=(f"ws{n % args.workspaces}", 0, now, results))

        celery = _measure(celery_submit, args.jobs)
    return {
        "benchmark": "throughput",
        "workspaces": args.workspaces,
        "fairbeat": fairbeat,
        "celery": celery,
        "ratio": round(fairbeat["jobs_per_s"] / celery["jobs_per_s"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--workspaces", type=int, default=10)
    args = parser.parse_args()
    with harness.redis_databases():
        data = run(args)
    harness.emit(data, args.json, lambda d: print(d))


if __name__ == "__main__":
    main()
