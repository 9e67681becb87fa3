"""``fairbeat status``'s counts: the busiest workspaces by live backlog, the rest
summed, and finished jobs only from the window's start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from fairbeat.store import overview
from fairbeat.store.models import job_table

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(minutes=15)


def _job(workspace: str, status: str, finished_at: datetime | None = None) -> dict[str, Any]:
    return {
        "workspace_id": workspace,
        "kind": "test.send",
        "payload": {},
        "status": status,
        "run_at": NOW - timedelta(hours=2),
        "created_at": NOW - timedelta(hours=2),
        "finished_at": finished_at,
    }


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(job_table.insert(), rows)


def test_top_workspaces_by_backlog_and_the_rest_as_one_line(engine: Engine) -> None:
    # Given five workspaces with live backlogs of 5, 4, 3, 2 and 1 jobs
    rows = [_job(f"ws{n}", "PENDING") for n in range(1, 6) for _ in range(6 - n)]
    rows += [_job("ws1", "RUNNING"), _job("ws3", "CLAIMED")]
    # and jobs that finished long ago, in a workspace with nothing live
    rows += [_job("old", "SUCCEEDED", NOW - timedelta(days=3)) for _ in range(50)]
    # and some that finished within the window
    rows += [_job("ws5", "SUCCEEDED", NOW - timedelta(minutes=1)), _job("ws2", "FAILED", NOW)]
    _insert(engine, rows)
    # When the top two are asked for
    with engine.connect() as conn:
        seen = overview.active_workspaces(conn, SINCE, top_n=2)
    # Then ws1 (6 live) and ws2 (4 live) are shown, by backlog
    assert [w.workspace_id for w in seen.top] == ["ws1", "ws2"]
    assert seen.top[0].counts["PENDING"] == 5 and seen.top[0].counts["RUNNING"] == 1
    assert seen.top[1].counts["FAILED"] == 1
    # And ws3, ws4, ws5 are one aggregate; "old" finished before the window: not active
    assert seen.others == 3
    assert seen.others_counts["PENDING"] == 3 + 2 + 1
    assert seen.others_counts["CLAIMED"] == 1
    assert seen.others_counts["SUCCEEDED"] == 1
    assert seen.totals["SUCCEEDED"] == 1 and seen.totals["PENDING"] == 15
    assert seen.totals["FAILED"] == 1


def test_a_workspace_with_only_recent_finished_jobs_is_active(engine: Engine) -> None:
    _insert(engine, [_job("done", "SUCCEEDED", NOW), _job("busy", "PENDING")])
    with engine.connect() as conn:
        seen = overview.active_workspaces(conn, SINCE, top_n=10)
    assert [w.workspace_id for w in seen.top] == ["busy", "done"]
    assert seen.others == 0
