"""``fairbeat up``: beat and a worker as child processes, stopped together."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import redis

NO_REDIS_HELP = (
    "No Redis answers at {url}. Start one, for example:\n"
    "  redis-server --port 6379 --save '' --appendonly no\n"
    "      (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)\n"
    "  docker run --rm -p 6379:6379 redis:7\n"
    "or point FAIRBEAT_REDIS_URL at yours."
)
STOP_GRACE_S = 15.0
FLOWER_USER = "fairbeat"


class UpError(RuntimeError):
    pass


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise UpError("no redis-server on PATH")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise UpError("the private redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        _stop([proc])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def flower_auth(configured: str | None) -> str:
    """Flower's ``user:password``: the configured one, else a fresh random password."""
    if configured:
        if ":" not in configured:
            raise UpError("FAIRBEAT_FLOWER_BASIC_AUTH: give it as user:password")
        return configured
    return f"{FLOWER_USER}:{secrets.token_urlsafe(12)}"


@contextmanager
def fleet(
    env: dict[str, str],
    loglevel: str = "warning",
    log_dir: Path | None = None,
    beats: int = 1,
    flower_port: int | None = None,
    flower_basic_auth: str | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``celery -A tasks worker``, ``celery -A tasks beat`` and, with a port,
    Flower on loopback (with ``flower_basic_auth``, ``user:password``, behind
    basic auth: Flower's API answers 401 without one); stop all on exit.

    With ``log_dir`` each child writes ``worker.log``, ``beat<N>.log`` and
    ``flower.log`` there. More than one beat is for tests that prove a second
    beat does no harm.
    """
    celery = [sys.executable, "-m", "celery", "-A", "fairbeat"]
    with tempfile.TemporaryDirectory(prefix="fairbeat-up-") as tmp, ExitStack() as logs:

        def output(name: str) -> IO[bytes] | None:
            return logs.enter_context(open(log_dir / f"{name}.log", "ab")) if log_dir else None

        worker = [*celery, "worker", "-l", loglevel]
        procs = [
            subprocess.Popen(worker, env=env, stdout=output("worker"), stderr=subprocess.STDOUT)
        ]
        for n in range(beats):
            schedule = str(Path(tmp) / f"beat-schedule-{n}")
            beat = [*celery, "beat", "-l", loglevel, "-s", schedule]
            out = output(f"beat{n}")
            procs.append(subprocess.Popen(beat, env=env, stdout=out, stderr=subprocess.STDOUT))
        if flower_port:
            flower = [*celery, "flower", f"--port={flower_port}", "--address=127.0.0.1"]
            out = output("flower")
            # In the environment, not on the command line, where ps would show it.
            flower_env = {**env, "FLOWER_BASIC_AUTH": flower_basic_auth or ""}
            procs.append(
                subprocess.Popen(flower, env=flower_env, stdout=out, stderr=subprocess.STDOUT)
            )
        try:
            yield procs
        finally:
            _stop(procs)


def child_env(**settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"FAIRBEAT_{k.upper()}": v for k, v in settings.items()})
    # The children import the same code as this process, wherever it runs from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env
