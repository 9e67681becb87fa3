"""Fairness by worker time (FAIRBEAT_FAIRNESS=time) with real worker and beat processes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fairbeat.store.keys import Keys
from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet, wait_for

pytestmark = pytest.mark.e2e


time_fair = module_fleet(
    "time_fair", "time-fair-logs", fairness="time", global_capacity="4", autoscale_enabled="false"
)


def started(live: Fleet, workspace: str) -> int:
    """Jobs of ``workspace`` that have started (running or finished)."""
    with live.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    job_table.c.workspace_id == workspace, job_table.c.started_at.is_not(None)
                )
            ).scalar_one()
        )


def test_a_workspace_of_short_jobs_gets_more_starts_not_less_time(time_fair: Fleet) -> None:
    live = time_fair
    # Given two backlogged workspaces whose jobs take 0.3 s and 0.03 s
    for _ in range(20):
        enqueue("slow", "test.sleep", {"seconds": 0.3}, app=live.client)
    for _ in range(300):
        enqueue("quick", "test.sleep", {"seconds": 0.03}, app=live.client)
    # When the estimates are learned and slow has used some worker time
    keys = Keys()
    field = keys.run_time_field("slow", "test.sleep")
    wait_for(lambda: live.redis.hget(keys.run_time, field), "the slow kind's estimate")
    baseline = (started(live, "slow"), started(live, "quick"))
    wait_for(lambda: started(live, "slow") >= baseline[0] + 3, "three more slow jobs to start")
    # Then quick, costing a tenth per job, started several times as many jobs meanwhile
    # (by count they would start about as many).
    slow_more = started(live, "slow") - baseline[0]
    quick_more = started(live, "quick") - baseline[1]
    assert quick_more >= 2 * slow_more, (slow_more, quick_more)
    slow_s = float(live.redis.hget(keys.run_time, field) or 0)
    quick_s = float(live.redis.hget(keys.run_time, keys.run_time_field("quick")) or 0)
    assert slow_s > 3 * quick_s > 0
    # And an innocent workspace's job enqueued meanwhile succeeds
    innocent = enqueue("innocent", "test.send", {"tag": "innocent"}, app=live.client)
    live.wait_status(innocent.job_id, "SUCCEEDED")
