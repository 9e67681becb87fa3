"""``fairbeat status`` at 1M finished jobs: the bounded status report against
the full health snapshot, on PostgreSQL.

python -m bench.status_scale --finished 1000000 --json

Fills the job table with generate_series: SUCCEEDED jobs of 1,000
workspaces that finished over the past 30 days (a few within the health
window), plus a live backlog, then VACUUM ANALYZEs it and times each report.
Redis is not read by either report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from bench import harness
from fairbeat.store.db import make_engine
from fairbeat.tasks.health import snapshot, status_report
from fairbeat.tasks.runtime import Runtime
from fairbeat.tasks.settings import Settings

REPEATS = 5


def _fill(engine: Engine, finished: int, live: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO job (workspace_id, kind, payload, status, run_at, started_at,
                                    finished_at, created_at)
                   SELECT 'ws' || lpad((g % 1000)::text, 4, '0'), 'bench.work', '{}',
                          'SUCCEEDED', t, t, t, t
                   FROM (SELECT g, now() - make_interval(secs => g % 2592000) AS t
                         FROM generate_series(1, :n) g) s"""
            ),
            {"n": finished},
        )
        conn.execute(
            text(
                """INSERT INTO job (workspace_id, kind, payload, run_at, created_at)
                   SELECT 'ws' || lpad((g % 50)::text, 4, '0'), 'bench.work', '{}',
                          now(), now()
                   FROM generate_series(1, :n) g"""
            ),
            {"n": live},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE job"))


def _time(report: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        report()
        times.append(time.perf_counter() - started)
    return round(sorted(times)[len(times) // 2], 3)


def _command(url: str) -> dict[str, float]:
    """Wall and CPU time of the real ``fairbeat status --json``, start-up
    included (medians of REPEATS runs)."""
    command = shutil.which("fairbeat")
    if command is None:
        raise SystemExit("no fairbeat command on PATH: pip install -e .")
    env = {**os.environ, "FAIRBEAT_DATABASE_URL": url}
    wall, cpu = [], []
    for _ in range(REPEATS):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([command, "status", "--json"], env=env, check=True, capture_output=True)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    return {
        "status_command_median_s": round(sorted(wall)[REPEATS // 2], 3),
        "status_command_cpu_median_s": round(sorted(cpu)[REPEATS // 2], 3),
    }


def run(finished: int, live: int) -> dict[str, Any]:
    with harness.fresh_database() as url:
        engine = make_engine(url)
        _fill(engine, finished, live)
        rt = Runtime(Settings(database_url=url))
        result = {
            "finished_jobs": finished,
            "live_jobs": live,
            "status_report_median_s": _time(lambda: status_report(rt, rt.now(), 10)),
            "full_snapshot_median_s": _time(lambda: snapshot(rt, rt.now())),
            **_command(url),
        }
        rt.engine.dispose()
        engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=5_000)
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    options = parser.parse_args()
    sys.stdout.write(json.dumps(run(options.finished, options.live), indent=2) + "\n")


if __name__ == "__main__":
    main()
