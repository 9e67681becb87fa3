"""``fairbeat up --demo``, the README's run command, as a newcomer runs it."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fairbeat.startup import Child, wait_started
from fairbeat.store import migrate
from fairbeat.up import UpError, fleet
from tests.e2e.conftest import fairbeat_cli, fairbeat_env

pytestmark = pytest.mark.e2e

NO_REDIS_HERE = "redis://127.0.0.1:1/0"


def run_in(
    folder: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_demo_runs_on_sqlite_with_a_private_redis_and_stops_clean(tmp_path: Path) -> None:
    # Given no Redis at the configured URL and a fresh directory (SQLite file default)
    env = fairbeat_env(redis_url=NO_REDIS_HERE)
    # When the README's run command runs
    result = run_in(tmp_path, env, fairbeat_cli(), "up", "--demo", timeout=400)
    # Then every demo job succeeded, on the embedded SQLite file
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "started a private one" in result.stdout
    # And this process used the private Redis too, and said how to reach it
    assert "kick failed" not in result.stdout + result.stderr
    assert re.search(r"export FAIRBEAT_REDIS_URL=redis://127\.0\.0\.1:\d+/0", result.stdout)
    # And the children's logs stay where it said
    logs = re.search(r"logs of the children in (\S+)", result.stdout)
    assert logs and (Path(logs[1]) / "worker.log").exists()
    assert re.search(r"demo done: (\d+) of \1 jobs succeeded", result.stdout)
    assert (tmp_path / "fairbeat.db").exists()
    # And no child process is left behind
    pids = {int(p) for p in re.findall(r"(?:worker|beat) pid (\d+)", result.stdout)}
    assert len(pids) == 2 and not any(pid_alive(pid) for pid in pids)


def test_up_without_any_redis_says_how_to_get_one(tmp_path: Path) -> None:
    env = fairbeat_env(redis_url=NO_REDIS_HERE)
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server to fall back on
    result = run_in(
        tmp_path, env, sys.executable, "-c", "from fairbeat.cli import main; main()", "up", "--demo"
    )
    assert result.returncode == 1
    assert "No Redis answers at redis://127.0.0.1:1/0" in result.stderr
    assert "redis-server --port 6379" in result.stderr


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    env = fairbeat_env()
    first = run_in(tmp_path, env, fairbeat_cli(), "migrate", "--json")
    again = run_in(tmp_path, env, fairbeat_cli(), "migrate", "--json")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    head = migrate.head_revision()
    assert json.loads(first.stdout) == {"from": None, "to": head}
    assert json.loads(again.stdout) == {"from": head, "to": head}  # idempotent
    assert (tmp_path / "fairbeat.db").exists()


def test_simulate_writes_json_and_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "sim.png"
    result = run_in(
        tmp_path,
        fairbeat_env(),
        fairbeat_cli(),
        "simulate",
        "--minutes",
        "45",
        "--json",
        "--plot",
        str(plot),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["capacity"] and data["ladder"] and data["summary"]["capacity_reasons"]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_ctrl_c_stops_every_process_of_up(tmp_path: Path) -> None:
    # Given `fairbeat up` in a process group of its own, as a terminal would run it
    env = fairbeat_env(redis_url=NO_REDIS_HERE)
    up = subprocess.Popen(
        [fairbeat_cli(), "up", "--flower-port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert up.stdout is not None
    lines = []
    for line in up.stdout:
        lines.append(line)
        if "fairbeat is up" in line:
            break
    assert any("fairbeat is up" in line for line in lines), lines
    # When Ctrl-C reaches the whole group
    os.killpg(up.pid, signal.SIGINT)
    up.wait(timeout=120)
    # Then nothing of that group is left: worker, beat, the private redis-server
    with pytest.raises(ProcessLookupError):
        os.killpg(up.pid, 0)


def test_a_child_that_dies_at_start_is_named_with_the_end_of_its_log(
    tmp_path: Path, e2e_redis_url: str
) -> None:
    # Given a worker whose FAIRBEAT_IMPORTS names a module it cannot import
    env = fairbeat_env(redis_url=e2e_redis_url, imports="no_such_module_for_the_worker")
    env["FAIRBEAT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fairbeat.db'}"
    console = Console(file=io.StringIO())
    with fleet(env, "warning", tmp_path) as procs:
        children = [
            Child("worker", procs[0], tmp_path / "worker.log", lambda: False, "a ping"),
            Child("beat", procs[1], tmp_path / "beat0.log", lambda: True, "its start"),
        ]
        # When up waits for it to start
        with pytest.raises(UpError) as raised:
            wait_started(children, console)
    # Then the error names the child that died (the worker, or beat: both import
    # FAIRBEAT_IMPORTS) and quotes the end of its log
    message = str(raised.value)
    dead = [c for c in children if message.startswith(f"{c.name} (pid {c.proc.pid}) exited")]
    assert len(dead) == 1, message
    assert str(dead[0].log) in message
    assert "no_such_module_for_the_worker" in message
