"""Poison with real processes: a '-infinity' run_at row and a broken workspace, written by SQL.

A worker and beat run on PostgreSQL whose job table predates migration
0010's CHECK constraints (dropped here), so the poison gets in as it did
before. The innocent workspace's job must still run, once; the poison job
is dead-lettered with a clear error; maintenance keeps succeeding; and
``fairbeat status --json`` answers throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from fairbeat.scheduling.reasons import WORKSPACE_MISCONFIGURED
from fairbeat.store.models import function_run_table
from fairbeat.tasks.api import enqueue
from tests import poison_rows
from tests.conftest import PostgresDatabases
from tests.e2e.conftest import Fleet, fairbeat_cli, fairbeat_env, running_fleet, wait_for
from tests.handlers import LEDGER_KEY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fleet(
    pg_databases: PostgresDatabases, e2e_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with running_fleet(
        pg_databases,
        tmp_path_factory.mktemp("poison-logs"),
        redis_url=e2e_redis_url,
        maintenance_interval_s="1",
    ) as started:
        poison_rows.drop_checks(started.engine)
        yield started


def runs_since(live: Fleet, function: str, since: datetime) -> list[Any]:
    run = function_run_table
    with live.engine.connect() as conn:
        return list(
            conn.execute(
                select(run.c.status, run.c.report).where(
                    run.c.function == function, run.c.started_at >= since
                )
            ).all()
        )


def status_json(live: Fleet) -> dict[str, Any]:
    result = live.run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return cast(dict[str, Any], json.loads(result.stdout))


def test_poison_rows_and_a_broken_workspace_never_stop_the_innocent(fleet: Fleet) -> None:
    live = fleet
    since = datetime.now(UTC)
    # Given a row with run_at '-infinity', inserted by the SQL contract
    poisoned = poison_rows.insert_job(live.engine, "poison", "-infinity")
    # And a workspace whose rate limit is inf, with a job waiting
    poison_rows.set_workspace(live.engine, "broken", rate_limit_per_s=float("inf"))
    held = enqueue("broken", "test.noop", {}, app=live.client)
    # Then `fairbeat status --json` answers at once
    assert status_json(live)["by_status"]["PENDING"] >= 1
    # When an innocent workspace's job is enqueued meanwhile
    innocent = enqueue("innocent", "test.send", {"tag": "innocent-poison"}, app=live.client)
    # Then it succeeds, and its effect happened once
    live.wait_status(innocent.job_id, "SUCCEEDED")
    sends = cast(list[bytes], live.redis.lrange(LEDGER_KEY, 0, -1))
    assert sends.count(b"innocent-poison") == 1
    # And the poison job is dead-lettered with a clear error
    dead = live.wait_status(poisoned, "FAILED")
    assert dead["last_error"].startswith("POISON_RUN_AT: run_at -infinity is not a time")
    # And the broken workspace's job is held, explained
    assert live.job(held.job_id)["status"] == "PENDING"

    def held_as_misconfigured() -> bool:
        for _, report in runs_since(live, "dispatch", since):
            for tick in (report or {}).get("last_ticks", []):
                if tick["unclaimed"].get(WORKSPACE_MISCONFIGURED):
                    return True
        return False

    wait_for(held_as_misconfigured, "a dispatch tick to report WORKSPACE_MISCONFIGURED")

    # And maintenance keeps succeeding, run after run; no dispatch run failed
    def three_maintenance_runs() -> bool:
        succeeded = [s for s, _ in runs_since(live, "maintenance", since) if s == "SUCCEEDED"]
        return len(succeeded) >= 3

    wait_for(three_maintenance_runs, "three maintenance runs to succeed")
    assert {s for s, _ in runs_since(live, "maintenance", since)} <= {"SUCCEEDED", "RUNNING"}
    assert {s for s, _ in runs_since(live, "dispatch", since)} <= {"SUCCEEDED", "RUNNING"}
    assert status_json(live)["by_status"]["FAILED"] >= 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate-limit", "inf"), ("--rate-limit", "nan"), ("--rate-limit", "-1"), ("--weight", "nan")],
)
def test_the_cli_refuses_a_limit_no_tick_could_use(fleet: Fleet, option: str, value: str) -> None:
    result = fleet.run_cli("workspace", "set", "cli-poison", option, value, "--why", "t")
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert option.lstrip("-").split("-")[0] in result.stderr.lower()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FAIRBEAT_IMPORTS", "no_such_module_x"),
        ("FAIRBEAT_STALE_AFTER_S", "inf"),
        ("FAIRBEAT_TIER_RATE_LIMITS", '{"default": NaN}'),
        ("FAIRBEAT_REDIS_URL", "http://:s3cret@127.0.0.1:6379/0"),
    ],
)
def test_a_setting_no_tick_could_use_stops_the_worker_and_the_cli_at_start(
    variable: str, value: str, tmp_path: Path
) -> None:
    # A migrated database, so the command gets as far as building the app.
    database = {"FAIRBEAT_DATABASE_URL": f"sqlite:///{tmp_path / 'fairbeat.db'}"}
    migrated = subprocess.run(
        [fairbeat_cli(), "migrate"], env={**fairbeat_env(), **database}, capture_output=True
    )
    assert migrated.returncode == 0, migrated.stderr
    env = {**fairbeat_env(), **database, variable: value}
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "fairbeat", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # enqueue builds the app (status needs no handlers, so it never imports them).
    cli = subprocess.run(
        [fairbeat_cli(), "enqueue", "acme", "test.send", "--payload", "{}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for result in (worker, cli):
        assert result.returncode != 0
        assert variable in result.stderr and "Traceback" not in result.stderr
        assert "s3cret" not in result.stderr + result.stdout
