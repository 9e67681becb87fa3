"""The run ledger: one function_run row per dispatch, gate or maintenance run.

A run is fenced: its heartbeat and finish are conditional on (id, fence,
RUNNING), so a run that was declared stale and superseded writes nothing.
The window key is unique per function: a beat tick fired twice runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import function_run_table

run_table = function_run_table

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STALE = "STALE"


@dataclass(frozen=True)
class FinishedRun:
    id: int
    function: str
    report: dict[str, Any]


def begin(
    conn: Connection, function: str, window_key: str, fence: int, now: datetime
) -> int | None:
    """Start a run; None when this window already has one."""
    stmt = (
        insert_ignoring_conflicts(conn, run_table)
        .values(
            function=function,
            window_key=window_key,
            status=RUNNING,
            fence=fence,
            started_at=now,
            heartbeat_at=now,
        )
        .returning(run_table.c.id)
    )
    run_id = conn.execute(stmt).scalar_one_or_none()
    return None if run_id is None else int(run_id)


def heartbeat(conn: Connection, run_id: int, fence: int, now: datetime) -> bool:
    result = conn.execute(
        update(run_table)
        .where(run_table.c.id == run_id, run_table.c.fence == fence, run_table.c.status == RUNNING)
        .values(heartbeat_at=now)
    )
    return result.rowcount == 1


def finish(
    conn: Connection,
    run_id: int,
    fence: int,
    now: datetime,
    report: dict[str, Any],
    status: str = SUCCEEDED,
) -> bool:
    result = conn.execute(
        update(run_table)
        .where(run_table.c.id == run_id, run_table.c.fence == fence, run_table.c.status == RUNNING)
        .values(status=status, finished_at=now, heartbeat_at=now, report=report)
    )
    return result.rowcount == 1


def mark_stale(conn: Connection, heartbeat_before: datetime, now: datetime) -> list[dict[str, Any]]:
    """RUNNING runs silent since ``heartbeat_before`` become STALE; their later writes,
    all conditional on RUNNING, are refused from then on."""
    rows = conn.execute(
        update(run_table)
        .where(run_table.c.status == RUNNING, run_table.c.heartbeat_at < heartbeat_before)
        .values(status=STALE, finished_at=now)
        .returning(
            run_table.c.id, run_table.c.function, run_table.c.fence, run_table.c.heartbeat_at
        )
    ).mappings()
    return [dict(row) for row in rows]


def count_silent(conn: Connection, heartbeat_before: datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                run_table.c.status == RUNNING, run_table.c.heartbeat_at < heartbeat_before
            )
        ).scalar_one()
    )


def max_fence(conn: Connection, function: str) -> int:
    value = conn.execute(
        select(func.max(run_table.c.fence)).where(run_table.c.function == function)
    ).scalar()
    return int(value or 0)


def still_current(function: str, run_id: int, fence: int) -> ColumnElement[bool]:
    """SQL true while run ``run_id`` is RUNNING and no run of ``function`` has a higher fence.

    A write guarded by this is refused once the run was declared stale or a
    successor began: a fencing token checked by the database itself.
    """
    other = run_table.alias("successor")
    return and_(
        exists().where(run_table.c.id == run_id, run_table.c.status == RUNNING),
        ~exists().where(other.c.function == function, other.c.fence > fence),
    )


def finished_after(conn: Connection, after_id: int, limit: int) -> list[FinishedRun]:
    """Up to ``limit`` finished runs with an id above ``after_id``, oldest first."""
    rows = conn.execute(
        select(run_table.c.id, run_table.c.function, run_table.c.report)
        .where(run_table.c.id > after_id, run_table.c.finished_at.is_not(None))
        .order_by(run_table.c.id)
        .limit(limit)
    )
    return [FinishedRun(int(r.id), r.function, r.report or {}) for r in rows]


def latest(conn: Connection, function: str, limit: int = 1) -> list[dict[str, Any]]:
    """The newest ``limit`` runs of ``function``, newest first."""
    query = (
        select(run_table)
        .where(run_table.c.function == function)
        .order_by(run_table.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(query).mappings()]
