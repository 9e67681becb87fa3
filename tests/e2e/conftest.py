"""A real fleet for end-to-end tests: ``celery -A fairbeat worker`` and beat processes,
on a PostgreSQL database of their own and a Redis database of their own
(FAIRBEAT_TEST_E2E_REDIS_URL, else database 1 of the run's own redis-server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine

from fairbeat.store import job_queries, migrate
from fairbeat.store.db import make_engine
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import Settings
from fairbeat.up import fleet
from tests.conftest import REPO_ROOT, PostgresDatabases

# Generous: a loaded two-core CI machine may take a while to start a worker.
DEADLINE_S = 90.0


def fairbeat_env(**settings: str) -> dict[str, str]:
    """The test process's environment without any FAIRBEAT_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRBEAT_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update({f"FAIRBEAT_{k.upper()}": v for k, v in settings.items()})
    return env


def fairbeat_cli() -> str:
    path = shutil.which("fairbeat")
    assert path, "the fairbeat command is not installed (pip install -e .)"
    return path


def wait_for(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` at the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Fleet:
    env: dict[str, str]
    engine: Engine
    client: Celery  # a producer on the fleet's broker, as an app would have
    redis: redis.Redis
    logs: Path
    procs: list[subprocess.Popen[bytes]]

    def run_cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [fairbeat_cli(), *args],
            env={**self.env, **{f"FAIRBEAT_{k.upper()}": v for k, v in env.items()}},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def job(self, job_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = job_queries.get_job(conn, job_id)
        assert row is not None
        return row

    def wait_status(self, job_id: int, *statuses: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            row = self.job(job_id)
            return row if row["status"] in statuses else None

        try:
            return wait_for(reached, f"job {job_id} to reach {statuses}")  # type: ignore[no-any-return]
        except AssertionError:
            self.dump_logs()
            raise

    def dump_logs(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            print(f"===== {log.name}\n{log.read_text()[-6000:]}")


@contextmanager
def running_fleet(
    pg_databases: PostgresDatabases,
    logs: Path,
    beats: int = 1,
    loglevel: str = "info",
    *,
    redis_url: str,
    **overrides: str,
) -> Iterator[Fleet]:
    """A worker and ``beats`` beat processes on a fresh database and a flushed ``redis_url``."""
    database_url = pg_databases.create("e2e")
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    settings = {
        "database_url": database_url,
        "redis_url": redis_url,
        "imports": "tests.handlers",
        "retry_base_s": "0.05",
        "dispatch_interval_s": "0.5",
        # A routed queue: the worker, started with no -Q, must consume it too.
        "routes": "test.flaky=jobs.flaky",
        **overrides,
    }
    broker = redis.Redis.from_url(settings["redis_url"])
    broker.flushdb()
    env = fairbeat_env(**settings)
    client = create_app(Settings(**settings))  # type: ignore[arg-type]
    with fleet(env, loglevel=loglevel, log_dir=logs, beats=beats) as procs:
        yield Fleet(env, engine, client, broker, logs, procs)
    broker.flushdb()
    engine.dispose()


def module_fleet(name: str, logs: str, beats: int = 1, /, **overrides: str) -> Any:
    """A module-scoped fixture called ``name``: a fleet with ``overrides`` and
    ``beats`` beat processes, its logs in a folder named after ``logs``."""

    @pytest.fixture(scope="module", name=name)
    def started(
        pg_databases: PostgresDatabases,
        e2e_redis_url: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[Fleet]:
        folder = tmp_path_factory.mktemp(logs)
        with running_fleet(
            pg_databases, folder, beats, redis_url=e2e_redis_url, **overrides
        ) as running:
            yield running

    return started


live = module_fleet("live", "fleet-logs")
