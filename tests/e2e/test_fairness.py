"""Fairness with real worker and beat processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import func, select

from fairbeat.store.models import duplicate_event_table, job_table
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet, module_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


# Two beat processes for the whole module: the second must do no harm.
two_beats = module_fleet("two_beats", "fair-logs", 2, global_capacity="8")


def counts(live: Fleet, workspace: str) -> dict[str, int]:
    with live.engine.connect() as conn:
        rows = conn.execute(
            select(job_table.c.status, func.count())
            .where(job_table.c.workspace_id == workspace)
            .group_by(job_table.c.status)
        ).all()
    return {status: int(n) for status, n in rows}


def test_a_small_workspace_finishes_while_a_hot_one_has_a_backlog(two_beats: Fleet) -> None:
    live = two_beats
    # Given a hot workspace with a backlog of hundreds of jobs
    for n in range(300):
        enqueue("hot", "test.sleep", {"seconds": 0.05, "tag": f"hot-{n}"}, app=live.client)
    wait_for(lambda: counts(live, "hot").get("SUCCEEDED", 0) >= 10, "the hot backlog to start")
    # When a small workspace enqueues a few jobs
    small = [
        enqueue("small", "test.send", {"tag": f"small-{n}"}, app=live.client).job_id
        for n in range(3)
    ]
    # Then they all succeed while the hot workspace still has jobs waiting
    for job_id in small:
        live.wait_status(job_id, "SUCCEEDED")
    assert counts(live, "hot").get("PENDING", 0) > 100
    finished = datetime.now(UTC)
    assert all((finished - live.job(j)["created_at"]).total_seconds() < 30 for j in small)


def test_two_beats_never_claim_or_send_twice(two_beats: Fleet) -> None:
    live = two_beats
    live.redis.delete(LEDGER_KEY)
    ids = [
        enqueue(f"ws{n % 4}", "test.send", {"tag": f"pair-{n}"}, app=live.client).job_id
        for n in range(40)
    ]
    for job_id in ids:
        live.wait_status(job_id, "SUCCEEDED")
    sends = [item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))]
    assert sorted(s for s in sends if s.startswith("pair-")) == sorted(
        f"pair-{n}" for n in range(40)
    )
    with live.engine.connect() as conn:
        dropped = conn.execute(select(func.count()).select_from(duplicate_event_table)).scalar_one()
        fences = conn.execute(
            select(func.max(job_table.c.fence)).where(job_table.c.id.in_(ids))
        ).scalar_one()
    assert dropped == 0  # no run message was ever sent twice
    assert fences == 1  # and no job was claimed twice


def test_a_critical_job_starts_ahead_of_a_bulk_flood_and_a_bystander_finishes(
    two_beats: Fleet,
) -> None:
    from fairbeat.tasks.bulk import enqueue_many

    live = two_beats
    live.redis.delete(LEDGER_KEY)
    # Given a bulk flood from one workspace, already running
    flood = enqueue_many(
        [
            {
                "workspace_id": "flood",
                "kind": "test.sleep",
                "payload": {"seconds": 0.05, "tag": f"flood-{n}"},
                "priority_class": "bulk",
            }
            for n in range(300)
        ],
        app=live.client,
    )
    wait_for(lambda: counts(live, "flood").get("SUCCEEDED", 0) >= 10, "the flood to start")
    # When another workspace enqueues a critical job, and a third a default one
    urgent = enqueue(
        "urgent", "test.send", {"tag": "urgent"}, priority_class="critical", app=live.client
    )
    bystander = enqueue("bystander", "test.send", {"tag": "bystander"}, app=live.client)
    # Then both finish, the critical one starting before the flood's tail
    started = live.wait_status(urgent.job_id, "SUCCEEDED")["started_at"]
    live.wait_status(bystander.job_id, "SUCCEEDED")
    for job in flood:
        live.wait_status(job.job_id, "SUCCEEDED")
    with live.engine.connect() as conn:
        later = conn.execute(
            select(func.count()).where(
                job_table.c.workspace_id == "flood", job_table.c.started_at > started
            )
        ).scalar_one()
        fences = conn.execute(
            select(func.max(job_table.c.fence)).where(
                job_table.c.workspace_id.in_(["flood", "urgent", "bystander"])
            )
        ).scalar_one()
    assert later >= 100  # most of the flood was still waiting when it started
    sends = [item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))]
    mine = sorted(s for s in sends if s.startswith(("flood-", "urgent", "bystander")))
    assert mine == sorted([*(f"flood-{n}" for n in range(300)), "urgent", "bystander"])
    assert fences == 1  # nothing claimed twice


def test_the_cli_enqueues_with_a_priority_class_and_refuses_an_unknown_one(
    two_beats: Fleet,
) -> None:
    live = two_beats
    done = live.run_cli(
        "enqueue",
        "cli-classes",
        "test.send",
        "--payload",
        '{"tag": "cli-critical"}',
        "--priority-class",
        "critical",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    row = live.wait_status(int(json.loads(done.stdout)["job_id"]), "SUCCEEDED")
    assert row["priority_class"] == "critical"
    refused = live.run_cli("enqueue", "cli-classes", "test.send", "--priority-class", "urgent")
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "error: priority_class: must be one of critical, default, bulk (FAIRBEAT_PRIORITY_CLASSES),"
        " got 'urgent'"
    ]
