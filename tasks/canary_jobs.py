"""The canary's probe job, registered on every worker so a canary needs no deploy."""

from __future__ import annotations

import time

import redis
from celery import shared_task

from fairbeat.tasks.context import job_context

CANARY_KIND = "canary.probe"


def sends_key(run: str) -> str:
    return f"fairbeat:canary:{run}:sends"


@shared_task(name=CANARY_KIND)
def probe(run: str, n: int, ms: float) -> None:
    ctx = job_context()
    time.sleep(ms / 1000)
    client = redis.Redis.from_url(ctx.runtime.settings.redis_url)
    # The customer-visible effect: counted by key, so a second execution shows.
    key = f"{ctx.workspace_id}:{n}"
    ctx.once(f"canary:{run}:{key}", lambda: int(client.hincrby(sends_key(run), key, 1)))
