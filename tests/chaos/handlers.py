"""Handlers for the chaos suite: each can stop at a chosen point so a test can
kill its worker there. Workers load them via FAIRBEAT_IMPORTS.

The customer-visible effect is a "send" to an external system the test owns:
``chaos:exec`` counts every execution per idempotency key (the raw effect),
and ``chaos:accepted`` keeps each key once, as a provider that honours
idempotency keys would.
"""

from __future__ import annotations

import os
import signal
import time

import redis
from celery import shared_task
from celery.signals import task_postrun

from fairbeat import app, job_context
from fairbeat.tasks.runtime import runtime_of

EXECUTED = "chaos:exec"
ACCEPTED = "chaos:accepted"
AT = "chaos:at"  # key -> "point:pid", where a handler is waiting to be killed
PAUSE_S = 60.0  # long enough for any test to kill it; never reached otherwise


def _redis() -> redis.Redis:
    return redis.Redis.from_url(job_context().runtime.settings.redis_url)


def _pause_once(client: redis.Redis, key: str, point: str) -> None:
    """Stop here the first time only, and say where, so the test can kill us."""
    if client.set(f"chaos:paused:{key}:{point}", 1, nx=True):
        client.hset(AT, key, f"{point}:{os.getpid()}")
        time.sleep(PAUSE_S)


def _send(client: redis.Redis, key: str, pause_after: bool) -> int:
    client.hincrby(EXECUTED, key, 1)
    client.sadd(ACCEPTED, key)
    if pause_after:
        # The window: sent, but the effect's record is not committed yet.
        _pause_once(client, key, "after_send")
    return 1


@shared_task(name="chaos.send")
def send(key: str, pause: str = "", ms: float = 0) -> None:
    ctx = job_context()
    client = _redis()
    if ms:
        time.sleep(ms / 1000)
    if pause == "before_send":
        _pause_once(client, key, pause)
    # The key doubles as the provider's idempotency key.
    ctx.once(f"send:{key}", lambda: _send(client, key, pause == "after_send"))


@shared_task(name="chaos.poison")
def poison(key: str) -> None:
    """Kills the worker process running it, every time."""
    _redis().hincrby(EXECUTED, key, 1)
    os.kill(os.getpid(), signal.SIGKILL)


@task_postrun.connect
def _pause_after_commit(task: object = None, args: tuple[object, ...] = (), **_: object) -> None:
    """For jobs marked so: stop after the run task committed SUCCEEDED, before the ack."""
    if getattr(task, "name", "") != "fairbeat.run" or not args:
        return
    client = redis.Redis.from_url(runtime_of(app).settings.redis_url)
    key = client.hget("chaos:pause_after_commit", str(args[0]))
    if isinstance(key, bytes):
        _pause_once(client, key.decode(), "after_commit")
