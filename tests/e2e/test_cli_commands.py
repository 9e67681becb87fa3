"""The command line as documented: negative capacity steps, statuses in any
case, and ``fairbeat status`` showing the busiest workspaces plus one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_errors import Cli, migrated, run

pytestmark = pytest.mark.e2e
__all__ = ["migrated", "run"]  # the fixtures, shared


def test_capacity_step_takes_a_negative_number(migrated: Path, run: Cli) -> None:
    stepped = run(migrated, "capacity", "step", "-8", "--why", "test", "--json")
    assert stepped.returncode == 0, stepped.stderr
    assert json.loads(stepped.stdout)["value"] == {"step": -8}
    shown = run(migrated, "capacity", "show", "--json")
    assert json.loads(shown.stdout)["override"] == {"step": -8}
    assert run(migrated, "capacity", "unpin", "--why", "test").returncode == 0


@pytest.mark.parametrize("status", ["failed", "FAILED", "Failed"])
def test_job_statuses_are_case_insensitive(migrated: Path, status: str, run: Cli) -> None:
    result = run(migrated, "jobs", "list", "--status", status, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"jobs": []}


def test_status_shows_the_top_workspaces_and_the_rest_as_one_line(migrated: Path, run: Cli) -> None:
    for workspace, n in (("big", 3), ("mid", 2), ("small", 1), ("tiny", 1)):
        for i in range(n):
            payload = json.dumps({"tag": f"{workspace}{i}"})
            args = ["enqueue", workspace, "test.send", "--payload", payload]
            done = run(migrated, *args, imports="tests.handlers")
            assert done.returncode == 0, done.stderr
    report = json.loads(run(migrated, "status", "--top", "2", "--json").stdout)
    assert list(report["workspaces"]) == ["big", "mid"]
    assert report["other_workspaces"] == {
        "count": 2,
        "by_status": report["other_workspaces"]["by_status"] | {"PENDING": 2},
    }
    assert report["by_status"]["PENDING"] == 7
    table = run(migrated, "status", "--top", "2")
    assert table.returncode == 0, table.stderr
    assert "2 more" in table.stdout and "small" not in table.stdout
    assert "{" not in table.stdout  # a table, not a dict repr


@pytest.mark.parametrize(
    "args",
    [
        ["ladder", "show"],
        ["capacity", "show"],
        ["maintenance", "run"],
        ["gate", "run", "--why", "t"],
    ],
)
def test_reports_print_as_tables(migrated: Path, args: list[str], run: Cli) -> None:
    result = run(migrated, *args)
    assert result.returncode == 0, result.stderr
    assert "{" not in result.stdout and "┃" in result.stdout
