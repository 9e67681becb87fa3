"""Cancelling running jobs with real processes, on a worker of one slot: the slot is
freed for an innocent workspace, and the cancelled attempt's late finish changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from fairbeat import cancel
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


# One slot for jobs and control tasks alike, and the default stale cutoff and
# time limit (15 and 30 minutes): only the cancel can free the slot in time.
one_slot = module_fleet("one_slot", "cancel-logs", worker_concurrency="1", cancel_grace_s="1")


def ledger(live: Fleet) -> list[str]:
    return [item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))]


def sends(live: Fleet, tag: str) -> int:
    return ledger(live).count(tag)


def test_a_handler_that_heartbeats_sees_the_cancel_and_frees_its_slot(one_slot: Fleet) -> None:
    live = one_slot
    # Given a handler working in heartbeats, holding the only slot
    busy = enqueue("noisy", "test.cancellable", {"tag": "loop"}, app=live.client).job_id
    live.wait_status(busy, "RUNNING")
    innocent = enqueue("innocent", "test.send", {"tag": "innocent-loop"}, app=live.client)
    # When an operator cancels it
    out = live.run_cli("jobs", "cancel", str(busy), "--why", "runaway loop", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"cancelled": [busy], "not_cancelled": []}
    # Then the handler learns it (cancelled True, heartbeat False) and stops by itself
    wait_for(lambda: "loop:cancelled=True:heartbeat=False" in ledger(live), "the handler to see it")
    # And the innocent job gets the freed slot, its effect sent once
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, "innocent-loop") == 1
    # And the late finish changed nothing: still CANCELLED, who and why kept, no effect
    wait_for(lambda: live.job(busy)["task_id"] is None, "the attempt's end to be recorded")
    row = live.job(busy)
    assert (row["status"], row["last_error"]) == ("CANCELLED", "CANCELLED: runaway loop")
    assert row["cancelled_by"] and "@" in row["cancelled_by"]
    assert row["attempts"] == 1 and sends(live, "loop") == 0


def test_a_handler_that_ignores_the_cancel_is_terminated_after_the_grace(
    one_slot: Fleet,
) -> None:
    live = one_slot
    # Given a handler sleeping an hour, ignoring heartbeats, holding the only slot
    sleeper = enqueue("noisy", "test.sleep", {"seconds": 3600, "tag": "sleeper"}, app=live.client)
    live.wait_status(sleeper.job_id, "RUNNING")
    innocent = enqueue("innocent", "test.send", {"tag": "innocent-sleep"}, app=live.client)
    # When it is cancelled from Python, and maintenance runs past the 1 s grace
    assert cancel(sleeper.job_id, why="stuck", app=live.client).cancelled == [sleeper.job_id]

    def terminated() -> bool:
        report = json.loads(live.run_cli("maintenance", "run", "--json").stdout)
        return bool(report["cancels_terminated"])

    wait_for(terminated, "maintenance to terminate the cancelled attempt")
    # Then the worker child is terminated and replaced: the innocent job runs in its slot
    assert live.wait_status(innocent.job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert sends(live, "innocent-sleep") == 1
    # And the cancelled job stays CANCELLED, its effect never sent, run once
    row = live.job(sleeper.job_id)
    assert (row["status"], row["attempts"], row["task_id"]) == ("CANCELLED", 1, None)
    assert row["last_error"] == "CANCELLED: stuck" and sends(live, "sleeper") == 0


def test_cancel_refuses_unknown_ids_and_a_missing_why_in_one_line(one_slot: Fleet) -> None:
    live = one_slot
    later = datetime.now(UTC) + timedelta(hours=1)
    job = enqueue("acme", "test.noop", {}, run_at=later, app=live.client).job_id
    missing = live.run_cli("jobs", "cancel", str(job))
    assert missing.returncode == 2 and "--why is missing" in missing.stderr
    unknown = live.run_cli("jobs", "cancel", str(job), "999999", "--why", "x")
    assert unknown.returncode == 2
    assert "no job with id 999999; nothing was cancelled" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    backlog = live.run_cli("jobs", "cancel", "--workspace", "acme", "--why", "x", "--json")
    assert json.loads(backlog.stdout) == {"workspace": "acme", "cancelled": [job]}
    assert live.job(job)["status"] == "CANCELLED"
