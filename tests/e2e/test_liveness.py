"""Liveness with real processes: a killed worker, a frozen dispatcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import func, select

from fairbeat.store.models import function_run_table, job_table
from fairbeat.tasks.api import enqueue
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e

STALE_S = 3.0  # heartbeats every second; maintenance every second


fleet3 = module_fleet(
    "fleet3",
    "liveness-logs",
    stale_after_s=str(STALE_S),
    maintenance_interval_s="1",
    delivery_timeout_s="5",
    dispatch_lease_s="2",
)


def sends(live: Fleet, tag: str) -> int:
    items = cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))
    return sum(1 for item in items if item == tag.encode())


def test_a_job_whose_worker_is_killed_is_recovered_and_finishes_once(fleet3: Fleet) -> None:
    live = fleet3
    # Given a job running in a worker child
    job = enqueue("acme", "test.sleep", {"seconds": 2.5, "tag": "killed"}, app=live.client)
    running = live.wait_status(job.job_id, "RUNNING")
    pid = int(running["locked_by"].rsplit(":", 1)[1])
    # When that child is killed with SIGKILL mid-job
    os.kill(pid, signal.SIGKILL)
    # Then maintenance returns the job past the cutoff, it runs again and succeeds
    done = live.wait_status(job.job_id, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED"
    assert done["attempts"] == 2 and done["fence"] == 2
    assert "RECOVERED_TO_PENDING" in done["last_error"]
    # And the customer-visible send happened exactly once
    assert sends(live, "killed") == 1


def test_a_frozen_dispatcher_changes_nothing_when_it_wakes(fleet3: Fleet) -> None:
    live = fleet3
    # Given jobs scheduled a day ahead, which only the frozen dispatcher will plan for
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    future = [
        enqueue("later", "test.send", {"tag": f"later-{n}"}, run_at=tomorrow, app=live.client)
        for n in range(3)
    ]
    helper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.paused_dispatcher",
            str(timedelta(days=1, minutes=1).total_seconds()),
        ],
        env=live.env,
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert helper.stdout is not None and helper.stdin is not None
    ready = json.loads(helper.stdout.readline())
    assert ready["ready"] and ready["planned"] == {"later": 3}
    # When it is frozen with SIGSTOP past its lease and the stale cutoff
    os.kill(helper.pid, signal.SIGSTOP)
    try:
        # Then a successor proceeds meanwhile: new work is dispatched and done
        now_job = enqueue("now", "test.send", {"tag": "during-freeze"}, app=live.client)
        live.wait_status(now_job.job_id, "SUCCEEDED")

        def marked_stale() -> bool:
            with live.engine.connect() as conn:
                status = conn.execute(
                    select(function_run_table.c.status).where(
                        function_run_table.c.id == ready["run_id"]
                    )
                ).scalar_one()
            return bool(status == "STALE")

        wait_for(marked_stale, "the frozen run to be marked STALE")
    finally:
        os.kill(helper.pid, signal.SIGCONT)
    # And when it wakes and carries out its plan, nothing gets through
    helper.stdin.write("go\n")
    helper.stdin.flush()
    outcome = json.loads(helper.stdout.readline())
    helper.wait(timeout=30)
    assert outcome == {"claimed": 0, "sent": 0, "finished": False, "state_saved": False}
    with live.engine.connect() as conn:
        untouched = conn.execute(
            select(func.count()).where(
                job_table.c.id.in_([j.job_id for j in future]),
                job_table.c.status == "PENDING",
                job_table.c.fence == 0,
            )
        ).scalar_one()
    assert untouched == 3
