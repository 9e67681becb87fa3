"""Start what a benchmark compares: a fresh database, a fairbeat fleet, a plain Celery worker."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.record import RESULTS_KEY
from fairbeat.store import migrate
from fairbeat.store.db import make_engine
from fairbeat.tasks.application import create_app
from fairbeat.tasks.settings import Settings
from fairbeat.up import child_env, fleet, private_redis

PG_ADMIN_URL = os.environ.get(
    "FAIRBEAT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Redis databases the benchmarks flush: fairbeat's, plain Celery's, the results;
# set by redis_databases() for the length of a run.
REDIS_VARIABLES = (
    "FAIRBEAT_BENCH_REDIS_URL",
    "FAIRBEAT_BENCH_PLAIN_REDIS_URL",
    "FAIRBEAT_BENCH_RESULTS_REDIS_URL",
)
FAIRBEAT_REDIS = PLAIN_REDIS = RESULTS_REDIS = ""
READY_TIMEOUT_S = 60.0


@contextmanager
def fresh_database(migrated: bool = True) -> Iterator[str]:
    """A new PostgreSQL database, dropped afterwards; with fairbeat's schema if ``migrated``."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"fairbeat_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def redis_databases() -> Iterator[None]:
    """The run's Redis databases: the FAIRBEAT_BENCH_*_REDIS_URL ones when set, else
    databases 0 to 2 of a redis-server of the run's own on a free loopback port."""
    global FAIRBEAT_REDIS, PLAIN_REDIS, RESULTS_REDIS
    configured = [os.environ.get(name, "") for name in REDIS_VARIABLES]
    with ExitStack() as stack:
        if not all(configured):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-redis-")))
            server = stack.enter_context(private_redis(workdir)).rsplit("/", 1)[0]
            configured = [url or f"{server}/{db}" for db, url in enumerate(configured)]
        FAIRBEAT_REDIS, PLAIN_REDIS, RESULTS_REDIS = configured
        yield


def flush(*urls: str) -> None:
    for url in urls:
        redis.Redis.from_url(url).flushdb()


def wait_for_worker(app: Celery) -> None:
    """Until a worker answers a ping over the broker: a real readiness check."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("no worker answered within the timeout")


def fairbeat_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "redis_url": FAIRBEAT_REDIS,
        "imports": "bench.handlers",
        **overrides,
    }


@contextmanager
def fairbeat_fleet(database_url: str, **overrides: Any) -> Iterator[Celery]:
    """A fairbeat worker and beat on ``database_url``; yields a client app."""
    flush(FAIRBEAT_REDIS, RESULTS_REDIS)
    settings = fairbeat_settings(database_url, **overrides)
    env = child_env(**{k: str(v) for k, v in settings.items()})
    client = create_app(Settings(**settings))
    client.loader.import_default_modules()
    with tempfile.TemporaryDirectory() as logs, fleet(env, log_dir=Path(logs)):
        wait_for_worker(client)
        yield client


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark's child process: ours, this checkout importable."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


@contextmanager
def child(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A benchmark's worker process, stopped (SIGTERM, then waited for) on exit."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def plain_worker(
    module: str = "bench.plain_app", result_backend: str | None = None
) -> Iterator[Celery]:
    """A Celery worker of ``module`` (fairbeat's worker settings); yields its app to send with.

    With ``result_backend``, the worker (through DB_BACKEND_URL) and the
    sending app both use it, as one application's processes would.
    """
    flush(PLAIN_REDIS, RESULTS_REDIS)
    backend = {} if result_backend is None else {"DB_BACKEND_URL": result_backend}
    env = bench_env(PLAIN_BROKER_URL=PLAIN_REDIS, **backend)
    argv = [sys.executable, "-m", "celery", "-A", module, "worker", "-l", "warning"]
    app: Celery = importlib.import_module(module).app
    app.conf.update(broker_url=PLAIN_REDIS)
    if result_backend is not None:
        app.conf.update(result_backend=result_backend)
    with child(argv, env):
        wait_for_worker(app)
        yield app


def results(url: str | None = None) -> list[dict[str, float]]:
    client = redis.Redis.from_url(url or RESULTS_REDIS)
    return [json.loads(raw) for raw in client.lrange(RESULTS_KEY, 0, -1)]


def wait_results(
    count: int, timeout_s: float = 900.0, url: str | None = None
) -> list[dict[str, float]]:
    """Until ``count`` jobs have recorded their timings in ``url`` (default: the run's)."""
    url = url or RESULTS_REDIS  # read now: redis_databases() sets it for the run
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    while client.llen(RESULTS_KEY) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {client.llen(RESULTS_KEY)} of {count} jobs finished")
        time.sleep(0.05)
    return results(url)


def emit(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        render(data)


def insert_due_backlog(conn: Any, jobs: int, workspaces: int) -> None:
    """``jobs`` due PENDING no-op jobs spread over ``workspaces`` (PostgreSQL)."""
    conn.execute(
        text(
            """INSERT INTO job (workspace_id, kind, payload, run_at, created_at)
               SELECT 'ws' || lpad((g % :w)::text, 6, '0'), 'bench.work', '{}',
                      now() - make_interval(secs => g % 600), now()
               FROM generate_series(1, :n) g"""
        ),
        {"w": workspaces, "n": jobs},
    )


def vacuum_jobs(engine: Any) -> None:
    """Fresh planner statistics after a bulk insert, as a long-running table has."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE job"))


def release_claims(engine: Any) -> None:
    """Put every claimed job back, and forget fairbeat's Redis state, between runs."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE job SET status = 'PENDING' WHERE status = 'CLAIMED'"))
    flush(FAIRBEAT_REDIS)
