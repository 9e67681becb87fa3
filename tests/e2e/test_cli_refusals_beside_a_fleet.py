"""The command line's refusals against a running fleet: each is one line and
exit 2, writes nothing, and a bystander workspace's jobs, enqueued before and
between them, each run exactly once."""

from __future__ import annotations

import json
from typing import cast

import pytest
from sqlalchemy import func, select

from fairbeat.store.models import job_table, workspace_table
from tests.e2e.conftest import Fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e

REFUSED = "refused-ws"
REFUSALS: list[tuple[list[str], str]] = [
    (["enqueue", REFUSED, "test.send", "--payload", "{not json"], "--payload"),
    (["enqueue", REFUSED, "test.nope"], "test.nope"),
    (["enqueue", REFUSED, "test.send", "--priority-class", "urgent"], "priority_class"),
    (["enqueue", REFUSED, "test.send", "--run-at", "tomorrow"], "--run-at"),
    (
        ["enqueue", REFUSED, "test.send", "--concurrency-limit", "0", "--concurrency-key", "k"],
        "concurrency_limit",
    ),
    (["workspace", "pause", REFUSED], "--why"),
    (["workspace", "set", REFUSED, "--weight", "-1", "--why", "test"], "weight"),
]


def _enqueue_bystander(live: Fleet, tag: str) -> int:
    result = live.run_cli(
        "enqueue", "bystander", "test.send", "--payload", json.dumps({"tag": tag}), "--json"
    )
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["job_id"])


def test_refused_commands_write_nothing_and_the_bystander_runs_once(live: Fleet) -> None:
    ids = [_enqueue_bystander(live, "before")]
    for index, (args, named) in enumerate(REFUSALS):
        result = live.run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert named in lines[0], (args, lines[0])
        ids.append(_enqueue_bystander(live, f"between-{index}"))

    with live.engine.connect() as conn:
        refused_jobs = conn.execute(
            select(func.count()).where(job_table.c.workspace_id == REFUSED)
        ).scalar_one()
        refused_row = conn.execute(
            select(workspace_table.c.paused).where(workspace_table.c.id == REFUSED)
        ).first()
    assert refused_jobs == 0
    assert refused_row is None or refused_row.paused is False

    def finished() -> set[str] | None:
        with live.engine.connect() as conn:
            found = set(
                conn.execute(select(job_table.c.status).where(job_table.c.id.in_(ids))).scalars()
            )
        return found if found <= {"SUCCEEDED", "FAILED"} else None

    assert wait_for(finished, "every bystander job to finish") == {"SUCCEEDED"}
    sent = [item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))]
    tags = ["before", *(f"between-{i}" for i in range(len(REFUSALS)))]
    assert [sent.count(tag) for tag in tags] == [1] * len(tags)
