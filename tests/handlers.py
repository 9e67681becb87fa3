"""Handler tasks the end-to-end tests enqueue. Workers load them via FAIRBEAT_IMPORTS.

Each customer-visible "send" is appended to a Redis list, the test's own
ledger, so a test can count how often an effect really happened.
"""

from __future__ import annotations

import time

import redis
from celery import shared_task

from fairbeat import job_context

LEDGER_KEY = "fairbeat-test:sends"


def _ledger() -> redis.Redis:
    return redis.Redis.from_url(job_context().runtime.settings.redis_url)


def _send(tag: str) -> int:
    return int(_ledger().rpush(LEDGER_KEY, tag))


@shared_task(name="test.send")
def send(tag: str) -> None:
    ctx = job_context()
    ctx.once(f"send:{tag}", lambda: _send(tag))


@shared_task(name="test.flaky")
def flaky(tag: str, fail_times: int) -> None:
    ctx = job_context()
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    ctx.once(f"send:{tag}", lambda: _send(tag))


@shared_task(name="test.always_fails")
def always_fails(message: str) -> None:
    raise RuntimeError(message)


@shared_task(name="test.sleep")
def sleep(seconds: float, tag: str = "") -> None:
    time.sleep(seconds)
    if tag:
        job_context().once(f"send:{tag}", lambda: _send(tag))


@shared_task(name="test.noop")
def noop() -> None:
    return None
