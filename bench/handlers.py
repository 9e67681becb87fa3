"""The benchmark job as a fairbeat handler (FAIRBEAT_IMPORTS=bench.handlers)."""

from __future__ import annotations

from celery import shared_task

from bench import record


@shared_task(name="bench.work")
def work(workspace: str, ms: float, enqueued_at: float, results: str) -> None:
    record.work(workspace, ms, enqueued_at, results)
