"""Workspace settings: tier, weight, pause. A workspace with no row has the defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

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


def get(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(ws).where(ws.c.id == workspace_id)).mappings().one_or_none()
    return dict(row) if row is not None else None


def high_quota_ids(conn: Connection) -> list[str]:
    """Workspaces that opted in to the high-quota ladder, sorted."""
    rows = conn.execute(select(ws.c.id).where(ws.c.high_quota_enabled).order_by(ws.c.id))
    return [str(r) for r in rows.scalars()]
