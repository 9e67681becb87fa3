"""A batch from `fairbeat enqueue --from-file` runs to completion beside another workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select

from fairbeat.store.models import job_table
from tests.e2e.conftest import Fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e

BATCH = 30


def test_a_batch_runs_to_completion_with_an_innocent_workspaces_job(
    live: Fleet, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"workspace_id": "bulk", "kind": "test.send", "payload": {"tag": f"bulk-{i}"}}
        for i in range(BATCH)
    ]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch = live.run_cli("enqueue", "--from-file", str(jobs), "--json")
    assert batch.returncode == 0, batch.stderr
    ids = json.loads(batch.stdout)["job_ids"]
    innocent = live.run_cli(
        "enqueue", "bystander", "test.send", "--payload", '{"tag": "innocent"}', "--json"
    )
    assert innocent.returncode == 0, innocent.stderr
    innocent_id = int(json.loads(innocent.stdout)["job_id"])

    def statuses() -> set[str] | None:
        with live.engine.connect() as conn:
            query = select(job_table.c.status).where(job_table.c.id.in_([*ids, innocent_id]))
            found = set(conn.execute(query).scalars())
        return found if found <= {"SUCCEEDED", "FAILED"} else None

    assert wait_for(statuses, "the batch and the bystander to finish") == {"SUCCEEDED"}
    sent = [item.decode() for item in cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))]
    assert sorted(sent.count(f"bulk-{i}") for i in range(BATCH)) == [1] * BATCH
    assert sent.count("innocent") == 1


def test_a_bad_line_refuses_the_whole_file_naming_its_line(live: Fleet, tmp_path: Path) -> None:
    jobs = tmp_path / "bad.jsonl"
    jobs.write_text(
        '{"workspace_id": "refused", "kind": "test.send", "payload": {"tag": "r"}}\n'
        '{"workspace_id": "refused", "kind": "test.send", "payload": {}}\n'
    )
    result = live.run_cli("enqueue", "--from-file", str(jobs))
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "line 2: jobs[1].payload" in said and "nothing was enqueued" in said
    with live.engine.connect() as conn:
        query = select(job_table.c.id).where(job_table.c.workspace_id == "refused")
        assert list(conn.execute(query)) == []
