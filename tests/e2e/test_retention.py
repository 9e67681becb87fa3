"""Pruning under load, with real worker and beat processes and every retention at zero."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Engine, func, select

from fairbeat.store.models import (
    duplicate_event_table,
    function_run_table,
    health_snapshot_table,
    job_table,
)
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e

ZERO = {
    f"retain_{kind}_s": "0s"
    for kind in (
        "succeeded",
        "failed",
        "cancelled",
        "function_run",
        "duplicate_event",
        "gate_decision",
        "alert",
        "health_snapshot",
    )
}
OLD = datetime.now(UTC) - timedelta(days=1)
OLD_FINISHED = 3000
OLD_PENDING = 50


# Maintenance, and so pruning, every second, in small batches; the
# shortest gate window and health window, so the evidence floor is near.
pruning_fleet = module_fleet(
    "pruning_fleet",
    "retention-logs",
    maintenance_interval_s="1",
    gate_window_s="60",
    health_window_s="1",
    prune_batch_size="200",
    prune_max_batches="3",
    **ZERO,
)


def seed_old_rows(engine: Engine) -> None:
    """A day-old history to prune, and a day-old backlog that must stay."""
    statuses = ("SUCCEEDED", "FAILED", "CANCELLED")
    finished = [
        {
            "workspace_id": "history",
            "kind": "test.send",
            "payload": {},
            "status": statuses[n % 3],
            "created_at": OLD,
            "run_at": OLD,
            "finished_at": OLD,
        }
        for n in range(OLD_FINISHED)
    ]
    waiting = [
        {
            "workspace_id": "later",
            "kind": "test.send",
            "payload": {"tag": f"later-{n}"},
            "status": "PENDING",
            "created_at": OLD,
            "run_at": datetime.now(UTC) + timedelta(days=1),
        }
        for n in range(OLD_PENDING)
    ]
    runs = [
        {
            "function": "dispatch",
            "window_key": f"old:{n}",
            "status": "SUCCEEDED",
            "fence": 0,
            "started_at": OLD,
            "heartbeat_at": OLD,
            "finished_at": OLD,
        }
        for n in range(300)
    ]
    with engine.begin() as conn:
        conn.execute(job_table.insert(), finished)
        conn.execute(job_table.insert(), waiting)
        conn.execute(function_run_table.insert(), runs)
        conn.execute(
            duplicate_event_table.insert(),
            [
                {
                    "workspace_id": "history",
                    "job_id": n,
                    "fence": 1,
                    "reason": "X",
                    "created_at": OLD,
                }
                for n in range(100)
            ],
        )
        conn.execute(
            health_snapshot_table.insert(), [{"taken_at": OLD, "data": {}} for _ in range(100)]
        )


def old_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:

        def older(table: Any, column: str) -> int:
            stmt = select(func.count()).select_from(table).where(table.c[column] <= OLD)
            return int(conn.execute(stmt).scalar_one())

        pending = select(func.count()).where(
            job_table.c.workspace_id == "later", job_table.c.status == "PENDING"
        )
        return {
            "jobs": older(job_table, "finished_at"),
            "runs": older(function_run_table, "finished_at"),
            "duplicates": older(duplicate_event_table, "created_at"),
            "snapshots": older(health_snapshot_table, "taken_at"),
            "later_pending": int(conn.execute(pending).scalar_one()),
        }


def sends(live: Fleet) -> Counter[str]:
    return Counter(
        item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))
    )


def test_pruning_under_load_keeps_every_unfinished_job(pruning_fleet: Fleet) -> None:
    live = pruning_fleet
    # Given a day of finished history and a day-old backlog due tomorrow
    seed_old_rows(live.engine)
    # When a busy workspace and an innocent one enqueue while `fairbeat prune
    # --older-than 0s` runs again and again beside maintenance's own pruning
    reports: list[dict[str, Any]] = []
    done = threading.Event()

    def prune_repeatedly() -> None:
        while not done.is_set():
            result = live.run_cli("prune", "--older-than", "0s", "--json")
            assert result.returncode == 0, result.stderr
            reports.append(json.loads(result.stdout))

    pruner = threading.Thread(target=prune_repeatedly)
    pruner.start()
    try:
        tags = [f"busy-{n}" for n in range(150)]
        for tag in tags[:75]:
            enqueue("busy", "test.sleep", {"seconds": 0.02, "tag": tag}, app=live.client)
        innocent = [f"innocent-{n}" for n in range(5)]
        for tag in innocent:
            enqueue("innocent", "test.send", {"tag": tag}, app=live.client)
        for tag in tags[75:]:
            enqueue("busy", "test.sleep", {"seconds": 0.02, "tag": tag}, app=live.client)
        # Then every job enqueued runs, exactly once: none was pruned unfinished
        expected = set(tags) | set(innocent)
        wait_for(lambda: expected <= set(sends(live)), "every enqueued job to run")
        wait_for(lambda: old_rows(live.engine)["jobs"] == 0, "the old history to be pruned")
    finally:
        done.set()
        pruner.join()
    counted = sends(live)
    assert all(counted[tag] == 1 for tag in expected), "an effect ran twice"
    # And the old history went, while the day-old backlog is all still PENDING
    assert old_rows(live.engine) == {
        "jobs": 0,
        "runs": 0,
        "duplicates": 0,
        "snapshots": 0,
        "later_pending": OLD_PENDING,
    }
    # And none of the innocent or busy jobs ended anywhere but SUCCEEDED
    with live.engine.connect() as conn:
        other = conn.execute(
            select(func.count()).where(
                job_table.c.workspace_id.in_(["busy", "innocent"]),
                job_table.c.status != "SUCCEEDED",
            )
        ).scalar_one()
    assert other == 0
    assert reports and all(r["reason_code"] == "OLDER_THAN_OVERRIDE" for r in reports)


def test_a_bad_duration_is_one_line_and_prunes_nothing(pruning_fleet: Fleet) -> None:
    result = pruning_fleet.run_cli("prune", "--older-than", "a week")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --older-than: not a duration: 'a week'; use a number and a unit s, m, h, d "
        "or w (e.g. 15m, 7d)"
    ]
