"""The work both systems run in the benchmarks, and where it records its timings."""

from __future__ import annotations

import json
import time

import redis

RESULTS_KEY = "bench:done"
_clients: dict[str, redis.Redis] = {}


def _client(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def work(workspace: str, ms: float, enqueued_at: float, results: str) -> None:
    """Sleep ``ms`` (the job), then record when it was enqueued, started and ended."""
    started = time.time()
    if ms:
        time.sleep(ms / 1000)
    ended = time.time()
    event = {"ws": workspace, "enq": enqueued_at, "start": started, "end": ended}
    _client(results).rpush(RESULTS_KEY, json.dumps(event))
