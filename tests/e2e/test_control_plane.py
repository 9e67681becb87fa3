"""Real worker and beat processes: claims the fleet can start, and a control plane
that runs whatever the job slots are doing (one worker, no -Q)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fairbeat.scheduling.fleet import WorkerSlots
from fairbeat.store.keys import Keys
from fairbeat.store.live import LiveState
from fairbeat.store.models import function_run_table, job_table
from fairbeat.tasks.api import enqueue
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import Fleet, running_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


def status_counts(fleet: Fleet) -> dict[str, int]:
    with fleet.engine.connect() as conn:
        rows = conn.execute(select(job_table.c.status, func.count()).group_by(job_table.c.status))
        return {status: int(n) for status, n in rows}


def runs_since(fleet: Fleet, function: str, since: datetime) -> int:
    with fleet.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    function_run_table.c.function == function,
                    function_run_table.c.status == "SUCCEEDED",
                    function_run_table.c.started_at > since,
                )
            ).scalar_one()
        )


def reported_slots(fleet: Fleet) -> list[WorkerSlots]:
    return LiveState(fleet.redis, Keys()).worker_slots()


def test_claims_stay_within_what_the_fleet_can_start_and_none_is_sent_twice(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path: Path
) -> None:
    # Given one worker of 2 slots, and a delivery timeout short enough that a
    # claim left waiting behind a 40-job backlog (10 s of work) would be sent again
    with running_fleet(
        pg_databases,
        tmp_path,
        redis_url=e2e_redis_url,
        worker_concurrency="2",
        delivery_timeout_s="6",
        maintenance_interval_s="1",
        fleet_claims_per_slot="2",
    ) as fleet:
        (worker,) = wait_for(lambda: reported_slots(fleet), "the worker to report its slots")
        assert worker.slots == 2 and "jobs.default" in worker.queues
        cap = 2 * 2
        # (its pool processes warmed up: a cold start is not the backlog's wait)
        warm = [enqueue("warm", "test.noop", {}, app=fleet.client).job_id for _ in range(2)]
        for job_id in warm:
            fleet.wait_status(job_id, "SUCCEEDED")
        # When four noisy workspaces enqueue 40 jobs of half a second, and an
        # innocent one a single job
        backlog = [
            enqueue(f"noisy{n % 4}", "test.sleep", {"seconds": 0.5}, app=fleet.client).job_id
            for n in range(40)
        ]
        innocent = enqueue("innocent", "test.send", {"tag": "innocent"}, app=fleet.client).job_id
        # Then claims never exceed what the fleet can start (polled until all ran)
        peak = 0

        def all_done() -> bool:
            nonlocal peak
            counts = status_counts(fleet)
            in_flight = counts.get("CLAIMED", 0) + counts.get("RUNNING", 0)
            peak = max(peak, in_flight)
            assert counts.get("CLAIMED", 0) <= cap and in_flight <= cap, counts
            return counts.get("SUCCEEDED", 0) == len(warm) + len(backlog) + 1

        wait_for(all_done, "the backlog to finish", deadline_s=180)
        # And every job got exactly one run message: each finished with fence 1
        with fleet.engine.connect() as conn:
            fences = dict(conn.execute(select(job_table.c.id, job_table.c.fence)).all())
        per_job = sum(fences[j] for j in backlog) / len(backlog)
        print(f"run messages per job: {per_job:.3f} (peak in flight {peak}, cap {cap})")
        assert per_job == 1.0 and peak >= 2
        assert fleet.job(innocent)["status"] == "SUCCEEDED" and fences[innocent] == 1
        sent = fleet.redis.lrange(LEDGER_KEY, 0, -1)
        assert sent.count(b"innocent") == 1


def test_the_control_plane_runs_while_the_only_job_slot_is_busy(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path: Path
) -> None:
    # Given one worker with no -Q (it consumes every queue) and one slot
    with running_fleet(
        pg_databases,
        tmp_path,
        redis_url=e2e_redis_url,
        worker_concurrency="1",
        maintenance_interval_s="1",
    ) as fleet:
        # When a job holds that slot for 30 s
        hog = enqueue("hog", "test.sleep", {"seconds": 30, "tag": "hog"}, app=fleet.client).job_id
        started = fleet.wait_status(hog, "RUNNING")["started_at"]
        other = enqueue("other", "test.send", {"tag": "other"}, app=fleet.client).job_id
        # Then maintenance and the dispatcher keep running meanwhile
        wait_for(
            lambda: (
                runs_since(fleet, "maintenance", started) >= 5
                and runs_since(fleet, "dispatch", started) >= 5
            ),
            "maintenance and dispatch runs while the slot is busy",
        )
        assert fleet.job(hog)["status"] == "RUNNING"
        # The dispatcher claimed the other workspace's job: it waits for the slot only
        assert fleet.wait_status(other, "CLAIMED", "RUNNING", "SUCCEEDED")["fence"] == 1
        # And once the slot is free, both finish, each sent once
        assert fleet.wait_status(hog, "SUCCEEDED")["attempts"] == 1
        assert fleet.wait_status(other, "SUCCEEDED")["fence"] == 1
        assert fleet.redis.lrange(LEDGER_KEY, 0, -1).count(b"other") == 1
        # No maintenance message was discarded as expired
        dropped = [
            line
            for line in (tmp_path / "worker.log").read_text().splitlines()
            if "fairbeat.maintenance" in line and any(w in line for w in ("xpired", "Discard"))
        ]
        assert dropped == []
