"""The per-job budget of one fairbeat worker under a backlog, per process.

    python -m bench.profile --json                # counts and CPU
    python -m bench.profile --json --py-spy       # also sample the worker (bench extra)

A fleet of one worker (concurrency 4) and one beat on a fresh database, with
their own throwaway Redis servers (fairbeat's, and one for the benchmark's
own timings, so that Redis's command counts are fairbeat's alone). Every
process runs bench.probe's counters. After an idle window, the driver
enqueues a burst of jobs across workspaces and waits for all of them; what
each process did in between, divided by the jobs, is the budget. Counts per
job hold on a loaded machine; CPU and wall-clock figures do not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import harness, probe, pyspy, readings
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import Settings
from fairbeat.up import child_env, private_redis

SLOTS = 4
RUN_TASK = "fairbeat.run"
# PostgreSQL's statistics reach pg_stat_database up to 10 s after a transaction.
PG_STATS_SETTLE_S = 11.0
PROBE_SITE = Path(__file__).resolve().parent / "profile_site"


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"  # installed into this environment
    return str(beside) if beside.exists() else "py-spy"


def _argv(py_spy: Path | None) -> tuple[list[str], list[str]]:
    celery = [sys.executable, "-m", "celery", "-A", "fairbeat"]
    worker = [*celery, "worker", "-l", "warning"]
    if py_spy is not None:
        spy = [_py_spy(), "record", "--subprocesses", "--full-filenames", "--nonblocking"]
        worker = [*spy, "--rate", "50", "-f", "raw", "-o", str(py_spy), "--", *worker]
    return worker, [*celery, "beat", "-l", "warning", "-s", "beat-schedule"]


@contextmanager
def _fleet(env: dict[str, str], workdir: Path, py_spy: Path | None) -> Iterator[int]:
    """Worker and beat, probed; yields the worker's main pid."""
    worker, beat = _argv(py_spy)
    with ExitStack() as stack:
        log = stack.enter_context(open(workdir / "fleet.log", "ab"))
        procs = [
            subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
            for argv in (worker, beat)
        ]
        worker_pid = procs[0].pid if py_spy is None else readings.only_child(procs[0].pid)
        try:
            yield worker_pid
        finally:
            # The worker itself, not py-spy: py-spy writes its samples once it has exited.
            os.kill(worker_pid, signal.SIGTERM)
            procs[1].terminate()
            for proc in procs:
                proc.wait(timeout=60)


def _env(database_url: str, redis_url: str, probe_dir: Path) -> dict[str, str]:
    env = child_env(database_url=database_url, redis_url=redis_url, imports="bench.handlers")
    env["PYTHONPATH"] = os.pathsep.join([str(PROBE_SITE), env["PYTHONPATH"]])
    env["FAIRBEAT_PROBE_DIR"] = str(probe_dir)
    return env


def _burst(args: argparse.Namespace, app: Any, results_url: str) -> list[dict[str, float]]:
    for n in range(args.jobs):
        workspace = f"ws{n % args.workspaces}"
        payload = {"workspace": workspace, "ms": args.job_ms, "enqueued_at": time.time()}
        enqueue(workspace, "bench.work", {**payload, "results": results_url}, app=app)
    return harness.wait_results(args.jobs, url=results_url)


def _measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    probe_dir = workdir / "probe"
    spy = workdir / "py-spy.txt" if args.py_spy else None
    with ExitStack() as stack:
        redis_url = stack.enter_context(private_redis(workdir))
        results_url = stack.enter_context(private_redis(workdir))
        database_url = stack.enter_context(harness.fresh_database())
        settings = Settings(
            database_url=database_url, redis_url=redis_url, imports="bench.handlers"
        )
        app = create_app(settings)
        app.loader.import_default_modules()
        probe.install(probe_dir)  # the driver's own counts
        worker_pid = stack.enter_context(
            _fleet(_env(database_url, redis_url, probe_dir), workdir, spy)
        )
        harness.wait_for_worker(app)
        source = readings.Source(probe_dir, worker_pid, redis_url, database_url)
        idle_start = source.read(settle_s=PG_STATS_SETTLE_S)
        burst_start = source.read(settle_s=PG_STATS_SETTLE_S)
        events = _burst(args, app, results_url)
        burst_end = source.read(settle_s=2 * probe.PERIOD_S)
        settled = source.read(settle_s=PG_STATS_SETTLE_S)
    port = str(make_url(redis_url).port)
    report = readings.report(
        args.jobs,
        (idle_start, burst_start, burst_end, settled),
        events,
        (source.driver_pid, port, SLOTS, RUN_TASK),
    )
    if spy is not None:
        report["py_spy"] = pyspy.summary(spy)
        if args.py_spy_raw:
            shutil.copyfile(spy, args.py_spy_raw)
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fairbeat-profile-") as tmp:
        data = _measure(args, Path(tmp))
    seconds = data.pop("burst_makespan_s")
    return {
        "benchmark": "profile",
        "jobs": args.jobs,
        "workspaces": args.workspaces,
        "job_ms": args.job_ms,
        "slots": SLOTS,
        "burst_makespan_s": seconds,
        "jobs_per_s": round(args.jobs / seconds, 1),
        **data,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--job-ms", type=float, default=20.0)
    parser.add_argument("--py-spy", action="store_true", help="sample the worker with py-spy")
    parser.add_argument("--py-spy-raw", type=Path, help="keep py-spy's raw samples here")
    args = parser.parse_args()
    harness.emit(run(args), args.json, lambda d: print(d))


if __name__ == "__main__":
    main()
