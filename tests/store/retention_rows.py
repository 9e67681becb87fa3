"""Rows for the retention tests, inserted directly at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from sqlalchemy import Engine, func, select

from fairbeat.store.models import job_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = count(1)


def jobs(status: str, at: datetime, n: int = 1, workspace: str = "acme") -> list[dict[str, Any]]:
    finished = at if status in ("SUCCEEDED", "FAILED", "CANCELLED") else None
    started = at if status in ("RUNNING", "SUCCEEDED", "FAILED") else None
    return [
        {
            "workspace_id": workspace,
            "kind": "test.send",
            "payload": {},
            "status": status,
            "run_at": at,
            "created_at": at,
            "started_at": started,
            "locked_at": started,
            "finished_at": finished,
        }
        for _ in range(n)
    ]


def run(function: str, at: datetime, status: str = "SUCCEEDED") -> dict[str, Any]:
    n = next(_ids)
    return {
        "function": function,
        "window_key": f"k{n}",
        "status": status,
        "fence": n,
        "started_at": at,
        "heartbeat_at": at,
        "finished_at": None if status == "RUNNING" else at,
        "report": {},
    }


def episode(at: datetime, resolved: datetime | None) -> dict[str, Any]:
    n = next(_ids)
    return {
        "kind": "STALE_RUN",
        "episode": f"e{n}",
        "fired_at": at,
        "resolved_at": resolved,
        "payload": {},
    }


def insert(engine: Engine, rows: dict[Any, list[dict[str, Any]]]) -> None:
    with engine.begin() as conn:
        for table, values in rows.items():
            if values:
                conn.execute(table.insert(), values)


def statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(job_table.c.status, func.count()).group_by(job_table.c.status))
        return {status: int(n) for status, n in rows}
