"""Workspace settings: tier, weight, pause. A workspace with no row has the defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.fair import MIN_WEIGHT
from fairbeat.scheduling.limits import MAX_RATE_PER_S, MAX_WEIGHT, MIN_RATE_PER_S, check_limits
from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import WORKSPACE_ID_MAX, workspace_table

ws = workspace_table


def ensure(conn: Connection, workspace_id: str, now: datetime) -> None:
    if not workspace_id or len(workspace_id) > WORKSPACE_ID_MAX:
        raise ValueError(f"workspace id must be 1 to {WORKSPACE_ID_MAX} characters")
    conn.execute(insert_ignoring_conflicts(conn, ws).values(id=workspace_id, created_at=now))


def update_settings(
    conn: Connection, workspace_id: str, now: datetime, **values: Any
) -> dict[str, Any]:
    """Set columns of one workspace (creating its row), and return the row."""
    ensure(conn, workspace_id, now)
    conn.execute(update(ws).where(ws.c.id == workspace_id).values(**values))
    row = conn.execute(select(ws).where(ws.c.id == workspace_id)).mappings().one()
    return dict(row)


def misconfigured(conn: Connection, limit: int = 100) -> dict[str, dict[str, str]]:
    """Workspaces whose weight or rate limit no tick can use: id -> setting -> what is wrong.

    The bounds are asked in SQL (NaN sorts above every number on PostgreSQL;
    SQLite cannot store one), so only the offending rows are read.
    """
    rate = ws.c.rate_limit_per_s
    bad_weight = ~((ws.c.weight >= MIN_WEIGHT) & (ws.c.weight <= MAX_WEIGHT))
    bad_rate = (
        rate.is_not(None) & (rate != 0) & ~((rate >= MIN_RATE_PER_S) & (rate <= MAX_RATE_PER_S))
    )
    rows = conn.execute(
        select(ws.c.id, ws.c.weight, rate)
        .where(bad_weight | bad_rate)
        .order_by(ws.c.id)
        .limit(limit)
    ).all()
    out = {}
    for row in rows:
        limits = check_limits(row.weight, row.rate_limit_per_s)
        if limits.reason_code:
            out[row.id] = dict(limits.evidence)
    return out


def get(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(ws).where(ws.c.id == workspace_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def high_quota_ids(conn: Connection) -> list[str]:
    """Workspaces that opted in to the high-quota ladder, sorted."""
    rows = conn.execute(select(ws.c.id).where(ws.c.high_quota_enabled).order_by(ws.c.id))
    return [str(r) for r in rows.scalars()]
