"""Bad input through the real command line: a clear error, exit 2, and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from fairbeat.store.models import job_table
from tests.e2e.conftest import Fleet, fairbeat_env

pytestmark = pytest.mark.e2e

CASES = [
    (["", "test.send", "--payload", '{"tag": "a"}'], "workspace_id: must be a non-empty string"),
    (["w" * 129, "test.send", "--payload", '{"tag": "a"}'], "workspace_id: longer than 128"),
    (["acme", "no.such.kind", "--payload", "{}"], "no task named 'no.such.kind'"),
    (["acme", "test.send", "--payload", "[1, 2]"], "payload: must be a JSON object"),
    (["acme", "test.send", "--payload", "{not json"], "--payload is not valid JSON"),
    (["acme", "test.send", "--payload", '{"tag": "' + "x" * 70_000 + '"}'], "over the limit"),
    (
        ["acme", "test.send", "--payload", '{"tag": "a"}', "--run-at", "2030-01-01T09:00:00"],
        "run_at: has no timezone",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[m for _, m in CASES])
def test_bad_enqueue_is_refused_with_a_clear_message(
    live: Fleet, args: list[str], message: str
) -> None:
    with live.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(job_table)).scalar_one()
    result = live.run_cli("enqueue", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    with live.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(job_table)).scalar_one()
    assert after == before


def test_an_unreachable_database_is_a_clear_error(live: Fleet) -> None:
    result = live.run_cli(
        "enqueue",
        "acme",
        "test.send",
        "--payload",
        '{"tag": "a"}',
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
    )
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FAIRBEAT_CLAIM_BATCH", "lots"), ("FAIRBEAT_DATABASE_URL", "mysql://db/x")],
)
def test_a_worker_with_a_wrong_setting_fails_at_start_naming_it(variable: str, value: str) -> None:
    env = fairbeat_env()
    env[variable] = value
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "fairbeat", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr


def test_workspace_commands_pause_resume_and_refuse_an_unknown_tier(live: Fleet) -> None:
    paused = live.run_cli("workspace", "pause", "cli-ws", "--why", "test", "--json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout)["paused"] is True
    shown = json.loads(live.run_cli("workspace", "show", "cli-ws", "--json").stdout)
    assert shown == {
        "id": "cli-ws",
        "tier": "default",
        "weight": 1.0,
        "paused": True,
        "high_quota_enabled": False,
        "rate_limit_per_s": None,
    }
    resumed = live.run_cli(
        "workspace", "set", "cli-ws", "--tier", "enterprise", "--high-quota", "--why", "test"
    )
    assert resumed.returncode == 0
    assert "tier=enterprise" in resumed.stdout and "high_quota_enabled=True" in resumed.stdout
    assert (
        json.loads(live.run_cli("workspace", "resume", "cli-ws", "--why", "test", "--json").stdout)[
            "paused"
        ]
        is False
    )
    unknown = live.run_cli("workspace", "set", "cli-ws", "--tier", "platinum", "--why", "t")
    assert unknown.returncode == 2 and "unknown tier 'platinum'" in unknown.stderr
