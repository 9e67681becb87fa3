"""Handler tasks the end-to-end tests enqueue. Workers load them via FAIRBEAT_IMPORTS.

Each customer-visible "send" is appended to a Redis list, the test's own
ledger, so a test can count how often an effect really happened.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from fairbeat import job_context
from fairbeat.store import job_queries

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


# A per-kind time limit of 2 s (soft at 1.8 s): the hang ends with the soft limit.
@shared_task(name="test.hang", time_limit=2)
def hang(seconds: float = 3600) -> None:
    time.sleep(seconds)


@shared_task(name="test.hang_hard", time_limit=3, soft_time_limit=1)
def hang_hard(seconds: float = 3600) -> None:
    """Swallows the soft limit and hangs on, until the worker kills it at the hard one."""
    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        time.sleep(seconds)


@shared_task(name="test.send_unstorable")
def send_unstorable(tag: str, result: str, fail_times: int = 0) -> None:
    """Sends once, returning what the ledger cannot store, then fails ``fail_times`` times."""
    ctx = job_context()
    values = {"datetime": datetime.now(UTC), "nan": math.nan, "object": object()}
    ctx.once(f"send:{tag}", lambda: (_send(tag), values[result])[1])
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"failure after the send, attempt {ctx.attempt}")


@shared_task(name="test.send_long_key")
def send_long_key(tag: str, length: int) -> None:
    job_context().once("k" * length, lambda: _send(tag))


@shared_task(name="test.cancellable")
def cancellable(tag: str) -> None:
    """Works in heartbeats until cancelled, says what it saw, then tries its effect."""
    ctx = job_context()
    while ctx.heartbeat() and not ctx.cancelled:
        time.sleep(0.2)
    _ledger().rpush(LEDGER_KEY, f"{tag}:cancelled={ctx.cancelled}:heartbeat={ctx.heartbeat()}")
    ctx.once(f"send:{tag}", lambda: _send(tag))


@shared_task(name="test.cancelled_midway")
def cancelled_midway(tag: str, fail: bool = False) -> None:
    """An operator cancels the job while it runs (in-process tests); it then ends anyway."""
    ctx = job_context()
    with ctx.runtime.engine.begin() as conn:
        job_queries.cancel(conn, [ctx.job_id], ctx.runtime.now(), who="ops@test", why="midway")
    _ledger().rpush(LEDGER_KEY, f"{tag}:cancelled={ctx.cancelled}:heartbeat={ctx.heartbeat()}")
    if fail:
        raise RuntimeError("failing after the cancel")


INTERVALS_KEY = "fairbeat-test:intervals"


@shared_task(name="test.interval")
def interval(seconds: float, tag: str) -> None:
    """Sleeps, recording when it ran: '<tag> <start> <end>' on the system-wide monotonic clock."""
    start = time.monotonic()
    time.sleep(seconds)
    _ledger().rpush(INTERVALS_KEY, f"{tag} {start} {time.monotonic()}")


@shared_task(name="test.spawn")
def spawn(child_tag: str, fail_times: int = 0, immediately: bool = False) -> None:
    """Enqueue a child ``test.send``, then fail the first ``fail_times`` attempts."""
    ctx = job_context()
    ctx.enqueue(
        "test.send",
        {"tag": f"{child_tag}:{ctx.attempt}" if immediately else child_tag},
        immediately=immediately,
    )
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"spawn failure on attempt {ctx.attempt}")
