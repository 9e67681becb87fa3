"""Fleets for the chaos suite, and the table of what each fault did.

FAIRBEAT_CHAOS_SCALE multiplies every burst (default 1, for CI); the results
of a run are written as JSON to FAIRBEAT_CHAOS_REPORT when set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PostgresDatabases
from tests.e2e.conftest import Fleet, running_fleet, wait_for

SCALE = int(os.environ.get("FAIRBEAT_CHAOS_SCALE", "1"))
RESULTS: list[dict[str, Any]] = []

# Fast liveness so a test sees recovery in seconds: heartbeats every second,
# maintenance every second, a claim resent after 5 s, a dispatch lease of 2 s.
CHAOS_SETTINGS = {
    "imports": "tests.chaos.handlers",
    "stale_after_s": "3",
    "maintenance_interval_s": "1",
    "delivery_timeout_s": "5",
    "dispatch_lease_s": "2",
    "retry_base_s": "0.05",
}


def record(fault: str, jobs: int, history: Any, recover_s: float, runs: int = 1) -> None:
    RESULTS.append(
        {
            "fault": fault,
            "runs": runs,
            "jobs": jobs,
            "lost": len(history.lost),
            "duplicated": sum(n - 1 for n in history.duplicated.values()),
            "visible_duplicates": history.visible_duplicates,
            "unexpected": len(history.unexpected),
            "recover_s": round(recover_s, 1),
        }
    )


@pytest.fixture(scope="session", autouse=True)
def report_results() -> Iterator[None]:
    yield
    target = os.environ.get("FAIRBEAT_CHAOS_REPORT")
    if target and RESULTS:
        Path(target).write_text(json.dumps(RESULTS, indent=2) + "\n")


@contextmanager
def chaos_fleet(
    pg: PostgresDatabases, logs: Path, *, redis_url: str, **overrides: str
) -> Iterator[Fleet]:
    settings = {**CHAOS_SETTINGS, **overrides}
    with running_fleet(pg, logs, 1, redis_url=redis_url, **settings) as fleet:
        yield fleet


@pytest.fixture
def fleet_factory(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path: Path
) -> Callable[..., Any]:
    def make(**overrides: str) -> Any:
        return chaos_fleet(pg_databases, tmp_path, **{"redis_url": e2e_redis_url, **overrides})

    return make


def start_worker(fleet: Fleet) -> subprocess.Popen[bytes]:
    """A replacement worker, as a supervisor would start after a crash."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fairbeat", "worker", "-l", "warning"],
        env=fleet.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def waiting_at(fleet: Fleet, key: str) -> tuple[str, int]:
    """Block until the handler for ``key`` is paused; (point, pid of its process)."""
    found = wait_for(lambda: fleet.redis.hget("chaos:at", key), f"the handler of {key} to pause")
    point, pid = found.decode().rsplit(":", 1)
    return point, int(pid)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
