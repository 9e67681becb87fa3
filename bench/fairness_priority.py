"""``--scenario priority``: critical jobs arriving during a bulk flood.

A flood of bulk jobs from several workspaces is in before the fleet starts;
once it runs, a few workspaces enqueue bursts of critical jobs. Reported:
``fairbeat.critical_p95_wait_s`` (enqueue to start) with priority classes,
the same with classes off (every job default: fairness across workspaces
alone), and plain Celery (one FIFO queue) for reference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench import harness
from bench.metrics import latency_summary
from fairbeat.tasks.application import create_app
from fairbeat.tasks.bulk import enqueue_many
from fairbeat.tasks.settings import Settings

CRITICAL = "urgent"
FLOODERS = 10


def _flood(args: argparse.Namespace) -> list[str]:
    return [f"flood-{n % FLOODERS}" for n in range(args.flood)]


def _critical(args: argparse.Namespace) -> list[str]:
    return [f"{CRITICAL}-{n % 4}" for n in range(args.critical_jobs)]


def _bursts(args: argparse.Namespace, submit: Callable[[list[str]], None]) -> None:
    """The critical jobs in bursts, the first once the flood has run a while."""
    time.sleep(args.critical_after_s)
    load = _critical(args)
    size = max(1, len(load) // args.bursts)
    for start in range(0, len(load), size):
        submit(load[start : start + size])
        time.sleep(args.burst_every_s)


def _summary(events: list[dict[str, float]]) -> dict[str, Any]:
    critical = [e for e in events if str(e["ws"]).startswith(CRITICAL)]
    waits = latency_summary(critical, field="start")
    return {
        "critical_p50_wait_s": waits["p50_s"],
        "critical_p95_wait_s": waits["p95_s"],
        "jobs": len(events),
    }


def _fairbeat(args: argparse.Namespace, classes: bool) -> dict[str, Any]:
    results = harness.RESULTS_REDIS

    def specs(workspaces: list[str], name: str) -> list[dict[str, Any]]:
        now = time.time()
        payload = {"ms": args.job_ms, "enqueued_at": now, "results": results}
        return [
            {
                "workspace_id": w,
                "kind": "bench.work",
                "payload": {"workspace": w, **payload},
                **({"priority_class": name} if classes else {}),
            }
            for w in workspaces
        ]

    with harness.fresh_database() as url:
        client = create_app(Settings(**harness.fairbeat_settings(url)))
        client.loader.import_default_modules()
        enqueue_many(specs(_flood(args), "bulk"), app=client)
        with harness.fairbeat_fleet(url) as app:

            def send(workspaces: list[str]) -> None:
                enqueue_many(specs(workspaces, "critical"), app=app)

            _bursts(args, send)
            events = harness.wait_results(args.flood + args.critical_jobs)
    return _summary(events)


def _celery(args: argparse.Namespace) -> dict[str, Any]:
    results = harness.RESULTS_REDIS
    with harness.plain_worker() as plain:

        def send(workspaces: list[str]) -> None:
            for w in workspaces:
                plain.send_task("plain.work", args=(w, args.job_ms, time.time(), results))

        send(_flood(args))
        _bursts(args, send)
        events = harness.wait_results(args.flood + args.critical_jobs)
    return _summary(events)


def run(args: argparse.Namespace) -> dict[str, Any]:
    on = _fairbeat(args, classes=True)
    off = _fairbeat(args, classes=False)
    celery = _celery(args)
    return {
        "benchmark": "fairness",
        "scenario": "priority",
        "flood_jobs": args.flood,
        "flood_workspaces": FLOODERS,
        "critical_jobs": args.critical_jobs,
        "job_ms": args.job_ms,
        "fairbeat": on,
        "classes_off": off,
        "celery": celery,
    }
