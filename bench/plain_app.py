"""Plain Celery, configured like fairbeat's workers, for side-by-side runs.

``celery -A bench.plain_app worker`` with PLAIN_BROKER_URL set. The same
serialiser, acks and prefetch as fairbeat, so the difference measured is
fairbeat's dispatching, not a setting.
"""

from __future__ import annotations

import os

from celery import Celery

from bench import record


def configure(app: Celery, queue: str) -> None:
    """fairbeat's worker settings on ``app``, consuming ``queue``."""
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=4,
        # Events on, as fairbeat has them for Flower: both pay for them.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_default_queue=queue,
    )


app = Celery("plain", broker=os.environ.get("PLAIN_BROKER_URL", "redis://127.0.0.1:6379/11"))
configure(app, "plain")


@app.task(name="plain.work")
def work(workspace: str, ms: float, enqueued_at: float, results: str) -> None:
    record.work(workspace, ms, enqueued_at, results)
