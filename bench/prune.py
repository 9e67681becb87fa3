"""Dispatch tick time on PostgreSQL with and without a prune running beside it.

    python -m bench.prune --json                       # 1M finished jobs
    python -m bench.prune --json --finished 100000     # a smaller run

The job table gets ``--finished`` SUCCEEDED jobs finished a month ago (past
the default 7-day retention) and a due backlog of PENDING jobs, both with
generate_series, then VACUUM ANALYZE. The real dispatcher ticks (select,
plan, claim, send to Redis; the claims handed back between ticks) in blocks,
alternately alone and while another process prunes the finished jobs as
maintenance does, batch after batch of FAIRBEAT_PRUNE_BATCH_SIZE rows, each
its own transaction. The blocks go in ABBA order, so a shared machine's
drift falls on both sides alike. Printed: tick times each way, the ratio of
the medians, and the prune's batch times and rows per second of pruning.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from typing import Any

from celery import Celery
from sqlalchemy import Engine, text

from bench import harness
from fairbeat.scheduling.retention import cutoffs
from fairbeat.store import retention
from fairbeat.store.db import make_engine
from fairbeat.tasks.application import create_app
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.runtime import Runtime
from fairbeat.tasks.settings import Settings

BACKLOG = 10_000
WORKSPACES = 100
BLOCKS = 10
TICKS_PER_BLOCK = 5
SETTLE_S = 0.3


def _fill(engine: Engine, finished: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO job (workspace_id, kind, payload, status, run_at, created_at,
                                    started_at, finished_at)
                   SELECT 'ws' || lpad((g % :w)::text, 6, '0'), 'bench.work', '{}', 'SUCCEEDED',
                          now() - interval '31 days', now() - interval '31 days',
                          now() - interval '30 days' - make_interval(secs => g % 86400),
                          now() - interval '30 days' - make_interval(secs => g % 86400)
                   FROM generate_series(1, :n) g"""
            ),
            {"w": WORKSPACES, "n": finished},
        )
        harness.insert_due_backlog(conn, BACKLOG, WORKSPACES)
    harness.vacuum_jobs(engine)


def _stats(times: list[float]) -> dict[str, Any]:
    times = sorted(times)
    return {
        "ticks": len(times),
        "tick_median_s": round(statistics.median(times), 4),
        "tick_p95_s": round(times[int(0.95 * (len(times) - 1))], 4),
        "tick_max_s": round(times[-1], 4),
    }


def _prune(url: str, active: Event, stop: Event, out: Any) -> None:
    """Prune the finished jobs as maintenance does, batch after batch, while ``active``."""
    rt = Runtime(Settings(database_url=url))
    size = rt.settings.prune_batch_size
    before = cutoffs(rt.settings.retention, datetime.now(UTC)).before["job_succeeded"]
    batches: list[float] = []
    deleted = 0
    while not stop.is_set():
        if not active.wait(0.05):
            continue
        t = time.perf_counter()
        with rt.engine.begin() as conn:
            deleted += retention.prune_batch(conn, "job_succeeded", before, size)
        batches.append(time.perf_counter() - t)
    busy = sum(batches)
    batches.sort()
    out.put(
        {
            "batch_size": size,
            "batches": len(batches),
            "rows_deleted": deleted,
            "rows_per_busy_s": round(deleted / busy, 1) if busy else None,
            "batch_median_s": round(statistics.median(batches), 4) if batches else None,
            "batch_max_s": round(batches[-1], 4) if batches else None,
        }
    )
    rt.engine.dispose()


def _interleaved(app: Celery, engine: Engine, active: Event) -> dict[str, list[float]]:
    """Blocks of ticks alone and beside the pruner, in ABBA order, so drift cancels."""
    dispatcher = Dispatcher(app)
    dispatcher.tick(fence=0, redis_ok=True)  # warm caches and plans
    harness.release_claims(engine)
    times: dict[str, list[float]] = {"alone": [], "pruning": []}
    for block in range(BLOCKS):
        for mode in ("alone", "pruning") if block % 2 == 0 else ("pruning", "alone"):
            if mode == "pruning":
                active.set()
            else:
                active.clear()
            time.sleep(SETTLE_S)  # a batch under way finishes; the pruner gets going
            for _ in range(TICKS_PER_BLOCK):
                started = time.perf_counter()
                dispatcher.tick(fence=0, redis_ok=True)
                times[mode].append(time.perf_counter() - started)
                harness.release_claims(engine)
    active.clear()
    return times


def run(finished: int) -> dict[str, Any]:
    with harness.fresh_database() as url:
        harness.flush(harness.FAIRBEAT_REDIS)
        app = create_app(Settings(**harness.fairbeat_settings(url)))
        engine = make_engine(url)
        _fill(engine, finished)
        ctx = multiprocessing.get_context("spawn")
        active, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        pruner = ctx.Process(target=_prune, args=(url, active, stop, out))
        pruner.start()
        times = _interleaved(app, engine, active)
        stop.set()
        prune_stats = out.get()
        pruner.join()
        engine.dispose()
    alone, beside = _stats(times["alone"]), _stats(times["pruning"])
    return {
        "benchmark": "prune",
        "finished_jobs": finished,
        "due_backlog": BACKLOG,
        "workspaces": WORKSPACES,
        "dispatch_alone": alone,
        "dispatch_while_pruning": beside,
        "prune": prune_stats,
        "tick_median_ratio": round(beside["tick_median_s"] / alone["tick_median_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--finished", type=int, default=1_000_000)
    args = parser.parse_args()
    with harness.redis_databases():
        data = run(args.finished)
    harness.emit(data, args.json, lambda d: print(d))


if __name__ == "__main__":
    main()
