"""Dispatch tick time on PostgreSQL as the backlog and the active workspaces grow.

    python -m bench.dispatch_scaling --json          # 10k/100k/1M x 10/1,000/10,000
    python -m bench.dispatch_scaling --json --quick  # small sizes, a smoke run

Each configuration fills the job table with generate_series, ANALYZEs it, and
times ticks of the real dispatcher (select, plan, claim, send to Redis). The
claims are handed back between ticks so every tick sees the same backlog.
Beside it, the simple fair selection it replaces: rank every due row with
ROW_NUMBER() OVER (PARTITION BY workspace_id) and keep the first ``cap`` of
each workspace (the select alone, no claim).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from celery import Celery
from sqlalchemy import Engine, text

from bench import harness
from fairbeat.store.db import make_engine
from fairbeat.tasks.application import create_app
from fairbeat.tasks.dispatch import Dispatcher
from fairbeat.tasks.settings import Settings

FULL = {"backlogs": [10_000, 100_000, 1_000_000], "workspaces": [10, 1_000, 10_000]}
QUICK = {"backlogs": [1_000, 10_000], "workspaces": [10, 100]}
TICKS = 7
RANKED = text(
    """SELECT id, workspace_id FROM (
           SELECT id, workspace_id, row_number() OVER (
               PARTITION BY workspace_id ORDER BY priority DESC, run_at, id) AS rank
           FROM job WHERE status = 'PENDING' AND run_at <= now()) ranked
       WHERE rank <= :cap"""
)


def _fill(engine: Engine, backlog: int, workspaces: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE job"))
        harness.insert_due_backlog(conn, backlog, workspaces)
    harness.vacuum_jobs(engine)


def _time_ticks(app: Celery, engine: Engine) -> dict[str, Any]:
    dispatcher = Dispatcher(app)
    cap = dispatcher.settings.partition_cap
    dispatcher.tick(fence=0, redis_ok=True)  # warm caches and plans
    harness.release_claims(engine)
    times, claimed = [], []
    for _ in range(TICKS):
        started = time.perf_counter()
        report = dispatcher.tick(fence=0, redis_ok=True)
        times.append(time.perf_counter() - started)
        claimed.append(report.claimed)
        harness.release_claims(engine)
    ranked = []
    for _ in range(3):
        started = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(RANKED, {"cap": cap}).all()
        ranked.append(time.perf_counter() - started)
    return {
        "tick_median_s": round(statistics.median(times), 4),
        "tick_max_s": round(max(times), 4),
        "claimed_per_tick": statistics.median(claimed),
        "rank_all_select_s": round(statistics.median(ranked), 4),
    }


def run(sizes: dict[str, list[int]]) -> dict[str, Any]:
    rows = []
    with harness.fresh_database() as url:
        harness.flush(harness.FAIRBEAT_REDIS)
        # No worker runs here to report its slots: lift the fleet bound, so a
        # tick claims what capacity allows, as the measured ticks always did.
        settings = harness.fairbeat_settings(url, fleet_claims_per_slot=100)
        app = create_app(Settings(**settings))
        engine = make_engine(url)
        for backlog in sizes["backlogs"]:
            for workspaces in sizes["workspaces"]:
                _fill(engine, backlog, workspaces)
                rows.append(
                    {"backlog": backlog, "workspaces": workspaces, **_time_ticks(app, engine)}
                )
        engine.dispose()
    return {"benchmark": "dispatch_scaling", "results": rows, **_ratios(rows, sizes)}


def _ratios(rows: list[dict[str, Any]], sizes: dict[str, list[int]]) -> dict[str, Any]:
    def tick(backlog: int, workspaces: int) -> float:
        for row in rows:
            if row["backlog"] == backlog and row["workspaces"] == workspaces:
                return float(row["tick_median_s"])
        raise KeyError((backlog, workspaces))

    backlogs, workspaces = sizes["backlogs"], sizes["workspaces"]
    middle = workspaces[len(workspaces) // 2]

    def ranked(backlog: int, workspaces: int) -> float:
        row = next(r for r in rows if (r["backlog"], r["workspaces"]) == (backlog, workspaces))
        return float(row["rank_all_select_s"])

    return {
        "backlog_growth_ratio": round(tick(backlogs[-1], middle) / tick(backlogs[0], middle), 3),
        "rank_all_growth_ratio": round(
            ranked(backlogs[-1], middle) / ranked(backlogs[0], middle), 3
        ),
        "ratio_at_workspaces": middle,
        "tick_at_most_workspaces_s": max(
            float(r["tick_median_s"]) for r in rows if r["workspaces"] == workspaces[-1]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with harness.redis_databases():
        data = run(QUICK if args.quick else FULL)
    harness.emit(data, args.json, lambda d: print(d))


if __name__ == "__main__":
    main()
