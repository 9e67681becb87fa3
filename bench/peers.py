"""The durable peers fairbeat is measured against: Celery's database backend, procrastinate.

Each runs on its own fresh PostgreSQL database with the worker settings of
plain Celery (one worker, concurrency 4, late acks, prefetch 1), and records
the same timings through bench.record.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import harness

Submit = Callable[[str, float, float], None]  # workspace, job ms, enqueued at


@contextmanager
def celery_db_backend() -> Iterator[Submit]:
    """Celery with ``result_backend="db+postgresql…"`` and ``task_track_started``."""
    with harness.fresh_database(migrated=False) as url:
        backend = f"db+{url}"
        with harness.plain_worker("bench.db_backend_app", result_backend=backend) as app:
            results = harness.RESULTS_REDIS

            def submit(workspace: str, ms: float, now: float) -> None:
                app.send_task("dbbackend.work", args=(workspace, ms, now, results))

            yield submit


def _libpq_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def _wait_for_procrastinate_worker(database_url: str) -> None:
    """Until the worker has registered itself in its table: it is fetching jobs."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + harness.READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar():
                    return
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise RuntimeError("the procrastinate worker did not register within the timeout")


@contextmanager
def procrastinate_worker() -> Iterator[Submit]:
    """A procrastinate worker of concurrency 4 on a fresh database with its schema."""
    # Imported here: procrastinate is the optional bench extra.
    from bench.procrastinate_app import QUEUE, TASK, make_app

    harness.flush(harness.RESULTS_REDIS)
    with harness.fresh_database(migrated=False) as url:
        dsn = _libpq_dsn(url)
        client = make_app(dsn)
        with client.open():
            client.schema_manager.apply_schema()
            env = harness.bench_env(PROCRASTINATE_BENCH_DSN=dsn)
            argv = [sys.executable, "-m", "procrastinate", "--app=bench.procrastinate_app.app"]
            argv += ["worker", "--concurrency=4", f"--queues={QUEUE}"]
            with harness.child(argv, env):
                _wait_for_procrastinate_worker(url)
                results = harness.RESULTS_REDIS
                task = client.configure_task(TASK)

                def submit(workspace: str, ms: float, now: float) -> None:
                    task.defer(workspace=workspace, ms=ms, enqueued_at=now, results=results)

                yield submit
