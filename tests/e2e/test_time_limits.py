"""Per-job time limits with real processes: a hung handler on a worker of one slot."""

from __future__ import annotations

from typing import cast

import pytest

from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


# One slot for jobs and control tasks alike, and the default stale cutoff
# (15 minutes): only the time limit can free the slot within the test.
one_slot = module_fleet("one_slot", "time-limit-logs", worker_concurrency="1")


def sends(live: Fleet, tag: str) -> int:
    items = cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))
    return sum(1 for item in items if item == tag.encode())


def test_a_hung_handler_ends_at_its_soft_limit_and_the_slot_serves_others(
    one_slot: Fleet,
) -> None:
    live = one_slot
    # Given a handler that sleeps an hour, with its kind's 2 s limit, holding the only slot
    hung = enqueue("noisy", "test.hang", {"seconds": 3600}, max_attempts=2, app=live.client)
    live.wait_status(hung.job_id, "RUNNING")
    # When an innocent workspace enqueues a job meanwhile
    innocent = enqueue("innocent", "test.send", {"tag": "innocent-soft"}, app=live.client)
    # Then the innocent job succeeds, its effect sent once
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, "innocent-soft") == 1
    # And the hung job used its two attempts and was dead-lettered, naming the time limit
    done = live.wait_status(hung.job_id, "FAILED", "SUCCEEDED")
    assert done["status"] == "FAILED" and done["attempts"] == 2
    assert done["last_error"].startswith(
        "TIME_LIMIT: the job ran past its soft time limit of 1.8 s"
    )
    assert "worker lost" not in done["last_error"]


def test_a_handler_that_swallows_the_soft_limit_is_killed_at_the_hard_one(
    one_slot: Fleet,
) -> None:
    live = one_slot
    # Given a handler that catches SoftTimeLimitExceeded and hangs on (hard limit 3 s)
    hung = enqueue("noisy", "test.hang_hard", {"seconds": 3600}, max_attempts=2, app=live.client)
    live.wait_status(hung.job_id, "RUNNING")
    innocent = enqueue("innocent", "test.send", {"tag": "innocent-hard"}, app=live.client)
    # Then the worker kills it; its main process ends the attempt at once (retried,
    # then dead-lettered), not recovery a stale cutoff later as a lost worker
    done = live.wait_status(hung.job_id, "FAILED", "SUCCEEDED")
    assert done["status"] == "FAILED" and done["attempts"] == 2
    assert done["last_error"].startswith("TIME_LIMIT: the job ran past its hard time limit")
    assert "worker lost" not in done["last_error"]
    # And the innocent job, enqueued during the fault, succeeded with one send
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, "innocent-hard") == 1
