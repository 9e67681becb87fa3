"""Celery with durable job state the way Celery offers it: the database result backend.

``celery -A bench.db_backend_app worker`` with PLAIN_BROKER_URL and
DB_BACKEND_URL (``db+postgresql+psycopg://…``) set. The worker settings are
plain Celery's (bench.plain_app); on top, every task's state is stored in
PostgreSQL: STARTED when it begins (``task_track_started``), then its
outcome. That is what a user who wants to look a job up afterwards turns on.
"""

from __future__ import annotations

import os

from celery import Celery

from bench import record
from bench.plain_app import configure

app = Celery(
    "dbbackend",
    broker=os.environ.get("PLAIN_BROKER_URL", "redis://127.0.0.1:6379/11"),
    backend=os.environ.get("DB_BACKEND_URL", "db+sqlite:///celery-results.sqlite3"),
)
configure(app, "dbbackend")
app.conf.update(task_ignore_result=False, task_track_started=True)


@app.task(name="dbbackend.work")
def work(workspace: str, ms: float, enqueued_at: float, results: str) -> None:
    record.work(workspace, ms, enqueued_at, results)
