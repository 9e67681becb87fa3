"""Real worker and beat processes: child jobs and jobs that run after others."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fairbeat.store.models import job_table
from fairbeat.tasks.api import enqueue
from tests.e2e.conftest import Fleet
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


def sends(live: Fleet, tag: str) -> int:
    return sum(1 for item in live.redis.lrange(LEDGER_KEY, 0, -1) if item == tag.encode())


def children_of(live: Fleet, job_id: int) -> list[Any]:
    with live.engine.connect() as conn:
        return list(conn.execute(select(job_table).where(job_table.c.parent_id == job_id)).all())


def test_a_child_of_a_failed_attempt_is_not_created(live: Fleet) -> None:
    parent = enqueue("acme", "test.spawn", {"child_tag": "kid-1", "fail_times": 1}, app=live.client)
    bystander = enqueue("innocent", "test.send", {"tag": "bystander-1"}, app=live.client)
    row = live.wait_status(parent.job_id, "SUCCEEDED", "FAILED")
    assert row["status"] == "SUCCEEDED" and row["attempts"] == 2
    (kid,) = children_of(live, parent.job_id)  # the failed first attempt created none
    assert kid.workspace_id == "acme" and kid.payload == {"tag": "kid-1"}
    assert live.wait_status(kid.id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert live.wait_status(bystander.job_id, "SUCCEEDED")["attempts"] == 1
    assert sends(live, "kid-1") == 1 and sends(live, "bystander-1") == 1


def test_a_dependent_job_runs_only_after_its_parents(live: Fleet) -> None:
    a = enqueue("acme", "test.sleep", {"seconds": 0.5, "tag": "dep-a"}, app=live.client)
    b = enqueue("acme", "test.sleep", {"seconds": 1.0, "tag": "dep-b"}, app=live.client)
    after = enqueue(
        "acme", "test.send", {"tag": "dep-c"}, after=[a.job_id, b.job_id], app=live.client
    )
    bystander = enqueue("innocent", "test.send", {"tag": "bystander-2"}, app=live.client)
    done = live.wait_status(after.job_id, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED"
    for parent in (live.job(a.job_id), live.job(b.job_id)):
        assert parent["status"] == "SUCCEEDED"
        assert done["started_at"] >= parent["finished_at"]
    assert live.wait_status(bystander.job_id, "SUCCEEDED")["status"] == "SUCCEEDED"
    assert sends(live, "dep-c") == 1


def test_a_failed_parent_dead_letters_its_dependents(live: Fleet) -> None:
    bad = enqueue(
        "acme", "test.always_fails", {"message": "upstream down"}, max_attempts=1, app=live.client
    )
    dependent = enqueue(
        "acme", "test.send", {"tag": "never-1"}, after=[bad.job_id], app=live.client
    )
    next_one = enqueue(
        "acme", "test.send", {"tag": "never-2"}, after=[dependent.job_id], app=live.client
    )
    bystander = enqueue("innocent", "test.send", {"tag": "bystander-3"}, app=live.client)
    assert live.wait_status(bad.job_id, "FAILED")["status"] == "FAILED"
    first = live.wait_status(dependent.job_id, "FAILED", "CANCELLED", "SUCCEEDED")
    second = live.wait_status(next_one.job_id, "FAILED", "CANCELLED", "SUCCEEDED")
    assert first["status"] == "FAILED" and f"job {bad.job_id}" in first["last_error"]
    assert second["status"] == "FAILED" and f"job {dependent.job_id}" in second["last_error"]
    assert live.wait_status(bystander.job_id, "SUCCEEDED")["status"] == "SUCCEEDED"
    assert sends(live, "never-1") == 0 and sends(live, "never-2") == 0


def test_cancelling_a_parent_cancels_its_dependents_by_the_setting(live: Fleet) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    parent = enqueue("acme", "test.send", {"tag": "later"}, run_at=later, app=live.client)
    dependent = enqueue(
        "acme", "test.send", {"tag": "never-3"}, after=[parent.job_id], app=live.client
    )
    cancelled = live.run_cli(
        "jobs",
        "cancel",
        str(parent.job_id),
        "--why",
        "not needed",
        "--json",
        dependency_failure="cancel",
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["cancelled"] == [parent.job_id]
    row = live.job(dependent.job_id)
    assert row["status"] == "CANCELLED" and f"job {parent.job_id}" in row["last_error"]
    tree = live.run_cli("jobs", "tree", str(parent.job_id), "--json")
    assert tree.returncode == 0, tree.stderr
    (shown,) = json.loads(tree.stdout)["job"]["children"]
    assert shown["id"] == dependent.job_id and shown["status"] == "CANCELLED"
    assert live.run_cli("jobs", "tree", str(parent.job_id)).returncode == 0
