"""The embedded default: ``fairbeat up [--demo]`` on one machine."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fairbeat.scheduling.jobstate import TERMINAL, JobStatus
from fairbeat.store import job_queries, migrate
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.application import default_app
from fairbeat.tasks.redact import mask_url
from fairbeat.tasks.runtime import runtime_of
from fairbeat.up import NO_REDIS_HELP, UpError, child_env, fleet, private_redis, redis_answers

console = Console()

# The demo is small; this is ample even on a loaded two-core machine.
DEMO_DEADLINE_S = 300.0
POLL_S = 0.5


def run_up(*, demo: bool, loglevel: str, flower_port: int) -> int:
    rt = runtime_of(default_app())
    settings = rt.settings
    with ExitStack() as stack:
        overrides: dict[str, str] = {}
        if not redis_answers(settings.redis_url):
            if shutil.which("redis-server") is None:
                raise UpError(NO_REDIS_HELP.format(url=mask_url(settings.redis_url)))
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fairbeat-")))
            overrides["redis_url"] = stack.enter_context(private_redis(workdir))
            console.print(
                f"no Redis at {mask_url(settings.redis_url)}; started a private one at "
                f"{overrides['redis_url']}"
            )
        migrate.upgrade(rt.engine)
        overrides["imports"] = ",".join([*settings.imports, *(["fairbeat.demo"] if demo else [])])
        env = child_env(**overrides)
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fairbeat-logs-")))
        procs = stack.enter_context(fleet(env, loglevel, log_dir, flower_port=flower_port or None))
        flower = f", Flower at http://127.0.0.1:{flower_port}" if flower_port else ""
        console.print(
            f"fairbeat is up: worker pid {procs[0].pid}, beat pid {procs[1].pid}{flower}, "
            f"database {rt.engine.url.render_as_string(hide_password=True)}. Ctrl-C stops."
        )
        try:
            return _watch_demo(procs) if demo else _wait(procs)
        except KeyboardInterrupt:
            console.print("stopping…")
            return 130
    return 0


# The worker and beat come first in the fleet; Flower, if any, is a convenience
# whose failure (say, its port is taken) must not stop the rest.
ESSENTIAL = 2


def _wait(procs: list[subprocess.Popen[bytes]]) -> int:
    while all(proc.poll() is None for proc in procs[:ESSENTIAL]):
        time.sleep(POLL_S)
    console.print("[red]a child process exited; stopping the rest[/red]")
    return 1


def _watch_demo(procs: list[subprocess.Popen[bytes]]) -> int:
    from fairbeat import demo

    rt = runtime_of(default_app())
    load = demo.demo_jobs()
    ids = [enqueue(ws, kind, payload, dedupe_key=key).job_id for ws, kind, payload, key in load]
    totals: dict[str, int] = {}
    for ws, *_ in load:
        totals[ws] = totals.get(ws, 0) + 1
    started = time.monotonic()
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bars = {ws: progress.add_task(ws, total=n, detail="") for ws, n in totals.items()}
        while True:
            with rt.engine.connect() as conn:
                counts = job_queries.count_by_workspace(conn, ids)
            for ws, bar in bars.items():
                mine = counts.get(ws, {})
                done = sum(n for s, n in mine.items() if s in TERMINAL)
                detail = " ".join(f"{s.lower()}={n}" for s, n in sorted(mine.items()))
                progress.update(bar, completed=done, detail=detail)
            finished = sum(sum(n for s, n in c.items() if s in TERMINAL) for c in counts.values())
            if finished == len(ids):
                break
            if any(proc.poll() is not None for proc in procs[:ESSENTIAL]):
                raise UpError("a worker or beat process exited during the demo")
            if time.monotonic() - started > DEMO_DEADLINE_S:
                raise UpError(f"the demo did not finish within {DEMO_DEADLINE_S:.0f} s")
            time.sleep(POLL_S)
    succeeded = sum(c.get(JobStatus.SUCCEEDED.value, 0) for c in counts.values())
    elapsed = time.monotonic() - started
    console.print(
        f"[green]demo done:[/green] {succeeded} of {len(ids)} jobs succeeded "
        f"across {len(totals)} workspaces in {elapsed:.1f} s"
    )
    return 0 if succeeded == len(ids) else 1
