"""Concurrency keys with real workers: jobs sharing a key of limit 1 never overlap."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

import pytest

from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet
from tests.handlers import INTERVALS_KEY

pytestmark = pytest.mark.e2e


fleet4 = module_fleet("fleet4", "keys-logs", worker_concurrency="4")


def intervals(live: Fleet) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for raw in live.redis.lrange(INTERVALS_KEY, 0, -1):
        tag, start, end = (raw.decode() if isinstance(raw, bytes) else raw).split()
        out[tag].append((float(start), float(end)))
    return out


def assert_no_overlap(spans: list[tuple[float, float]]) -> None:
    spans = sorted(spans)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two jobs of one key overlapped: {spans}"


def test_jobs_of_a_key_with_limit_one_never_overlap(fleet4: Fleet) -> None:
    live = fleet4
    # Given jobs of one user's key in one workspace, and of a global provider key in two
    ids = [
        enqueue(
            "keyed",
            "test.interval",
            {"seconds": 0.2, "tag": "user"},
            concurrency_key="user:7",
            concurrency_limit=1,
            app=live.client,
        ).job_id
        for _ in range(5)
    ]
    ids += [
        enqueue(
            workspace,
            "test.interval",
            {"seconds": 0.2, "tag": "provider"},
            concurrency_keys=["global:provider-x"],
            concurrency_limit=1,
            app=live.client,
        ).job_id
        for workspace in ("keyed", "other")
        for _ in range(3)
    ]
    # And an innocent workspace's jobs enqueued meanwhile
    innocent = [
        enqueue("innocent", "test.send", {"tag": f"innocent-{n}"}, app=live.client).job_id
        for n in range(4)
    ]
    # Then every job succeeds, the innocent ones too
    for job_id in innocent + ids:
        live.wait_status(job_id, "SUCCEEDED")
    # (each handler records its interval before its job can succeed)
    spans = intervals(live)
    assert len(spans["user"]) == 5 and len(spans["provider"]) == 6
    # And no two jobs of one key were ever in flight together
    assert_no_overlap(spans["user"])
    assert_no_overlap(spans["provider"])


def test_the_cli_enqueues_with_keys_and_debounces(fleet4: Fleet) -> None:
    def cli(*args: str) -> dict[str, Any]:
        result = fleet4.run_cli("enqueue", "cli", "test.send", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    keyed = cli(
        "--payload",
        '{"tag": "cli-keyed"}',
        "--concurrency-key",
        "user:1",
        "--concurrency-key",
        "global:provider-y",
        "--concurrency-limit",
        "1",
    )
    fleet4.wait_status(int(keyed["job_id"]), "SUCCEEDED")
    debounce = ("--dedupe-key", "d", "--on-conflict", "debounce", "--debounce-s", "600")
    first = cli("--payload", '{"tag": "cli-1"}', *debounce)
    again = cli("--payload", '{"tag": "cli-2"}', *debounce)
    assert again["job_id"] == first["job_id"] and again["replaced"] and not again["created"]
    row = fleet4.job(int(first["job_id"]))
    assert row["status"] == "PENDING" and row["payload"] == {"tag": "cli-2"}
    refused = fleet4.run_cli("enqueue", "cli", "test.send", "--concurrency-key", "user:1")
    assert refused.returncode != 0 and "concurrency_limit" in refused.stderr
