"""No-op jobs per second end to end, enqueue to finish: fairbeat against plain Celery
and against the durable peers (Celery's database result backend, procrastinate).

python -m bench.throughput --json       # needs the bench extra: pip install -e ".[bench]"
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench import harness, peers
from bench.metrics import fastest, makespan, ratio
from fairbeat.tasks.api import enqueue

DURABLE = ("celery_db_backend", "procrastinate")


def _measure(submit: Callable[[int, float], None], jobs: int) -> dict[str, Any]:
    for n in range(jobs):
        submit(n, time.time())
    events = harness.wait_results(jobs)
    seconds = makespan(events)
    return {"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_s": round(jobs / seconds, 1)}


def _measure_peer(submit: peers.Submit, args: argparse.Namespace) -> dict[str, Any]:
    return _measure(lambda n, now: submit(f"ws{n % args.workspaces}", 0, now), args.jobs)


def _fairbeat(args: argparse.Namespace) -> dict[str, Any]:
    results = harness.RESULTS_REDIS
    with harness.fresh_database() as url, harness.fairbeat_fleet(url) as app:

        def submit(n: int, now: float) -> None:
            workspace = f"ws{n % args.workspaces}"
            payload = {"workspace": workspace, "ms": 0, "enqueued_at": now, "results": results}
            enqueue(workspace, "bench.work", payload, app=app)

        return _measure(submit, args.jobs)


def _celery(args: argparse.Namespace) -> dict[str, Any]:
    results = harness.RESULTS_REDIS
    with harness.plain_worker() as plain:

        def submit(n: int, now: float) -> None:
            plain.send_task("plain.work", args=(f"ws{n % args.workspaces}", 0, now, results))

        return _measure(submit, args.jobs)


def _durable(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    with peers.celery_db_backend() as submit:
        db_backend = _measure_peer(submit, args)
    with peers.procrastinate_worker() as submit:
        procrastinate = _measure_peer(submit, args)
    return {"celery_db_backend": db_backend, "procrastinate": procrastinate}


def run(args: argparse.Namespace) -> dict[str, Any]:
    systems = {"fairbeat": _fairbeat(args), "celery": _celery(args), **_durable(args)}
    rate = {name: float(system["jobs_per_s"]) for name, system in systems.items()}
    peer, peer_rate = fastest({name: rate[name] for name in DURABLE})
    return {
        "benchmark": "throughput",
        "workspaces": args.workspaces,
        **systems,
        "ratio": ratio(rate["fairbeat"], rate["celery"]),
        "durable_ratio": ratio(rate["fairbeat"], peer_rate),
        "fastest_durable_peer": peer,
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
