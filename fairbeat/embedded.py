"""The embedded default: ``fairbeat up [--demo]`` on one machine."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fairbeat.scheduling.jobstate import TERMINAL, JobStatus
from fairbeat.startup import Child, died, port_answers, port_taken, wait_started
from fairbeat.tasks.redact import mask_url
from fairbeat.up import (
    NO_REDIS_HELP,
    UpError,
    child_env,
    fleet,
    flower_auth,
    private_redis,
    redis_answers,
)

console = Console()

# The demo is small; this is ample even on a loaded two-core machine.
DEMO_DEADLINE_S = 300.0
POLL_S = 0.5
PING_TIMEOUT_S = 1.0


def _redis_for_everyone(stack: ExitStack, configured: str) -> None:
    """Start a private Redis when none answers at ``configured``, and point this
    process (and so its children) at it: its own enqueues and kicks use it too."""
    if redis_answers(configured):
        return
    if shutil.which("redis-server") is None:
        raise UpError(NO_REDIS_HELP.format(url=mask_url(configured)))
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fairbeat-")))
    url = stack.enter_context(private_redis(workdir))
    os.environ["FAIRBEAT_REDIS_URL"] = url
    console.print(
        f"no Redis at {mask_url(configured)}; started a private one at {url}\n"
        f"  other shells can use it while this runs: export FAIRBEAT_REDIS_URL={url}",
        highlight=False,
        soft_wrap=True,
    )


def _app(imports: list[str]) -> Any:
    """The app, built after any private Redis is in the environment."""
    from fairbeat.cli_support import check_imports
    from fairbeat.tasks.application import default_app

    check_imports(imports)
    default_app.cache_clear()
    return default_app()


def _children(
    app: Any, procs: list[subprocess.Popen[bytes]], logs: Path, flower: int
) -> list[Child]:
    def worker_ready() -> bool:
        return bool(app.control.ping(timeout=PING_TIMEOUT_S))

    children = [
        Child("worker", procs[0], logs / "worker.log", worker_ready, "its reply to a ping"),
        Child("beat", procs[1], logs / "beat0.log", lambda: True, "its start"),
    ]
    if flower:
        ready = functools.partial(port_answers, flower)
        waiting = f"http://127.0.0.1:{flower}"
        children.append(Child("flower", procs[2], logs / "flower.log", ready, waiting))
    return children


def run_up(*, demo: bool, loglevel: str, flower_port: int, log_dir: Path | None = None) -> int:
    from fairbeat.store import migrate
    from fairbeat.tasks.runtime import runtime_of
    from fairbeat.tasks.settings import load_settings

    settings = load_settings()
    if flower_port and port_taken(flower_port):
        raise UpError(
            f"Flower's port {flower_port} is already in use on 127.0.0.1: "
            "pass --flower-port with a free port, or 0 for no Flower"
        )
    with ExitStack() as stack:
        _redis_for_everyone(stack, settings.redis_url)
        imports = [*settings.imports, *(["fairbeat.demo"] if demo else [])]
        app = _app(imports)
        rt = runtime_of(app)
        migrate.upgrade(rt.engine)
        env = child_env(imports=",".join(imports))
        logs = log_dir or Path(tempfile.mkdtemp(prefix="fairbeat-logs-"))
        logs.mkdir(parents=True, exist_ok=True)
        console.print(f"logs of the children in {logs}", highlight=False, soft_wrap=True)
        auth = flower_auth(settings.flower_basic_auth)
        procs = stack.enter_context(
            fleet(env, loglevel, logs, flower_port=flower_port or None, flower_basic_auth=auth)
        )
        children = _children(app, procs, logs, flower_port)
        try:
            wait_started(children, console)
            login = _login(auth, generated=not settings.flower_basic_auth)
            _announce(rt, procs, flower_port, login)
            return _watch_demo(app, children) if demo else _wait(children)
        except KeyboardInterrupt:
            console.print("stopping…")
            return 130
    return 0


def _login(auth: str, generated: bool) -> str:
    user, _, password = auth.partition(":")
    if not generated:
        return f"user {user!r}, password from FAIRBEAT_FLOWER_BASIC_AUTH"
    return f"user {user!r}, password {password!r}; curl -u {user}:{password} .../api/tasks"


def _announce(rt: Any, procs: list[subprocess.Popen[bytes]], flower_port: int, login: str) -> None:
    flower = f", Flower at http://127.0.0.1:{flower_port} ({login})" if flower_port else ""
    console.print(
        f"fairbeat is up: worker pid {procs[0].pid}, beat pid {procs[1].pid}{flower}, "
        f"database {rt.engine.url.render_as_string(hide_password=True)}, "
        f"Redis {rt.settings.redis_url}. Ctrl-C stops.",
        highlight=False,
        soft_wrap=True,
    )


# The worker and beat come first in the fleet; Flower, if any, is a convenience
# whose failure after the start must not stop the rest.
ESSENTIAL = 2


def _wait(children: list[Child]) -> int:
    while all(c.proc.poll() is None for c in children[:ESSENTIAL]):
        time.sleep(POLL_S)
    raise died(next(c for c in children[:ESSENTIAL] if c.proc.poll() is not None))


def _detail(mine: dict[str, int]) -> str:
    if not any(mine.get(s, 0) for s in ("CLAIMED", "RUNNING", *TERMINAL)):
        return "waiting for the dispatcher to claim a job"
    return " ".join(f"{s.lower()}={n}" for s, n in sorted(mine.items()))


def _watch_demo(app: Any, children: list[Child]) -> int:
    from fairbeat import demo
    from fairbeat.store import job_queries
    from fairbeat.tasks.api import enqueue
    from fairbeat.tasks.runtime import runtime_of

    rt = runtime_of(app)
    load = demo.demo_jobs()
    ids = [enqueue(ws, kind, p, dedupe_key=key, app=app).job_id for ws, kind, p, key in load]
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
                progress.update(bar, completed=done, detail=_detail(mine))
            finished = sum(sum(n for s, n in c.items() if s in TERMINAL) for c in counts.values())
            if finished == len(ids):
                break
            for child in children[:ESSENTIAL]:
                if child.proc.poll() is not None:
                    raise died(child)
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
