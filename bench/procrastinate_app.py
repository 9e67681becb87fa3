"""The benchmark job as a procrastinate task, a PostgreSQL job queue.

``python -m procrastinate --app=bench.procrastinate_app.app worker`` with
PROCRASTINATE_BENCH_DSN (a libpq connection string) set. Only the
procrastinate peer imports this module: procrastinate is in the ``bench``
extra, not a dependency of fairbeat.
"""

from __future__ import annotations

import os

import procrastinate

from bench import record

QUEUE = "bench"
TASK = "bench.work"


def _work(workspace: str, ms: float, enqueued_at: float, results: str) -> None:
    record.work(workspace, ms, enqueued_at, results)


def make_app(dsn: str) -> procrastinate.App:
    """An app on ``dsn`` that knows the benchmark task; the worker's and the driver's."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    # Registered without decorator syntax so the module type-checks whether or
    # not the optional procrastinate package is installed.
    app.task(name=TASK, queue=QUEUE)(_work)
    return app


app = make_app(os.environ.get("PROCRASTINATE_BENCH_DSN", "postgresql://127.0.0.1/postgres"))
