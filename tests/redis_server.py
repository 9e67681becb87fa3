"""A redis-server of the test run's own, on a free loopback port, keeping nothing on disk.

Two test runs on one machine each start their own, so neither flushes the
other's databases. The chaos suite restarts one on the same port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

START_DEADLINE_S = 20.0
# A free port may be taken by someone else before redis-server binds it.
START_ATTEMPTS = 3


class RedisServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(client: redis.Redis, pid: int) -> bool:
    """Whether the server on the port is ours (another run's may have taken the port)."""
    try:
        return bool(client.info("server")["process_id"] == pid)
    except (redis.RedisError, OSError):
        return False


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerError(
            "no redis-server on PATH: install Redis, or set FAIRBEAT_TEST_REDIS_URL "
            "and FAIRBEAT_TEST_E2E_REDIS_URL to Redis databases the tests may flush"
        )
    return binary


class PrivateRedis:
    """One redis-server process in ``workdir``; ``url`` names its database 0."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_of(0)

    def url_of(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers."""
        args = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "."]
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), *args],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_DEADLINE_S
        try:
            while not _answers(client, self.proc.pid):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


def start_private_redis(workdir: Path) -> PrivateRedis:
    """A started server on a free port, trying another port if the first was taken."""
    redis_server_binary()  # with none, fail at once with the fix
    for _ in range(START_ATTEMPTS - 1):
        server = PrivateRedis(workdir)
        with contextlib.suppress(RedisServerError):
            server.start()
            return server
    server = PrivateRedis(workdir)
    server.start()
    return server
