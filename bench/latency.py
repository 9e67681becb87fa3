"""Enqueue to start on an idle system, one job at a time: fairbeat against plain Celery.

python -m bench.latency --json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench import harness
from fairbeat.scheduling.stats import percentile
from fairbeat.tasks.api import enqueue

IDLE_GAP_S = 0.05


def _measure(submit: Callable[[float], None], jobs: int) -> dict[str, Any]:
    for n in range(jobs):
        submit(time.time())
        harness.wait_results(n + 1, timeout_s=60)
        time.sleep(IDLE_GAP_S)  # idle again before the next one
    waits = [(float(e["start"]) - float(e["enq"])) * 1000 for e in harness.results()]
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    return {
        "jobs": jobs,
        "enqueue_to_start_p50_ms": round(p50 or 0.0, 2),
        "enqueue_to_start_p95_ms": round(p95 or 0.0, 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = harness.RESULTS_REDIS
    with harness.fresh_database() as url, harness.fairbeat_fleet(url) as app:

        def fairbeat_submit(now: float) -> None:
            payload = {"workspace": "idle", "ms": 0, "enqueued_at": now, "results": results}
            enqueue("idle", "bench.work", payload, app=app)

        fairbeat = _measure(fairbeat_submit, args.jobs)
    with harness.plain_worker() as plain:

        def celery_submit(now: float) -> None:
            plain.send_task("plain.work", args=("idle", 0, now, results))

        celery = _measure(celery_submit, args.jobs)
    return {
        "benchmark": "latency",
        **{k: v for k, v in fairbeat.items() if k != "jobs"},
        "jobs": args.jobs,
        "fairbeat": fairbeat,
        "celery": celery,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with harness.redis_databases():
        data = run(args)
    harness.emit(data, args.json, lambda d: print(d))


if __name__ == "__main__":
    main()
