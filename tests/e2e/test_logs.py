"""The README's `celery -A fairbeat worker|beat` (Celery's default WARNING level)
still shows fairbeat's decisions: the runbook's first check reads these lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PostgresDatabases
from tests.e2e.conftest import running_fleet, wait_for

pytestmark = pytest.mark.e2e


def actions(log: Path) -> list[str]:
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line).get("action"))
    return found


def test_ticks_and_maintenance_show_at_celerys_default_level(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path: Path
) -> None:
    # Given a worker and beat at Celery's default level (warning),
    with running_fleet(
        pg_databases,
        tmp_path,
        loglevel="warning",
        redis_url=e2e_redis_url,
        maintenance_interval_s="1",
    ) as fleet:
        # when the fleet runs a job,
        result = fleet.run_cli("enqueue", "acme", "test.send", "--payload", '{"tag": "log"}')
        assert result.returncode == 0, result.stderr
        # then the worker's log has tick summaries and maintenance runs, and no
        # line per finished job.
        worker_log = tmp_path / "worker.log"
        wait_for(
            lambda: {"dispatch.tick", "maintenance.run"} <= set(actions(worker_log)),
            "dispatch.tick and maintenance.run in the worker's log",
        )
        assert "run.finished" not in actions(worker_log)
