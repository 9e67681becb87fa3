"""``once()`` with real processes: a sent effect whose record cannot hold its
result is never sent again, across retries; a key too long is refused unsent."""

from __future__ import annotations

from typing import cast

import pytest

from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


def sends(live: Fleet, tag: str) -> int:
    items = cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))
    return sum(1 for item in items if item == tag.encode())


@pytest.mark.parametrize("result", ["datetime", "nan", "object"])
def test_an_unstorable_result_is_sent_once_across_retries(live: Fleet, result: str) -> None:
    # Given a handler that sends, gets back what the ledger cannot store, then
    # fails twice after the send
    tag = f"unstorable-{result}"
    job = enqueue(
        "acme",
        "test.send_unstorable",
        {"tag": tag, "result": result, "fail_times": 2},
        max_attempts=5,
        app=live.client,
    )
    innocent = enqueue("innocent", "test.send", {"tag": f"bystander-{result}"}, app=live.client)
    # Then the third attempt succeeds, and the send happened exactly once
    done = live.wait_status(job.job_id, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED" and done["attempts"] == 3
    assert sends(live, tag) == 1
    # And the innocent workspace's job, enqueued meanwhile, succeeded with one send
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, f"bystander-{result}") == 1


def test_a_key_over_the_ledgers_length_is_refused_before_any_send(live: Fleet) -> None:
    job = enqueue(
        "acme",
        "test.send_long_key",
        {"tag": "long", "length": 401},
        max_attempts=2,
        app=live.client,
    )
    done = live.wait_status(job.job_id, "FAILED", "SUCCEEDED")
    assert done["status"] == "FAILED"
    assert "401 characters, over the ledger's 400" in done["last_error"]
    assert sends(live, "long") == 0
