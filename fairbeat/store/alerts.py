"""Alert episodes in SQL: at most one open episode per kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import alert_table

alert = alert_table


def open_kinds(conn: Connection) -> frozenset[str]:
    rows = conn.execute(select(alert.c.kind).where(alert.c.resolved_at.is_(None))).scalars()
    return frozenset(rows)


def open_episode(conn: Connection, kind: str, now: datetime, payload: dict[str, Any]) -> str | None:
    """Open an episode; None when one of this kind is open already (fired before)."""
    if kind in open_kinds(conn):
        return None
    episode = f"{kind}:{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
    stmt = insert_ignoring_conflicts(conn, alert).values(
        kind=kind, episode=episode, fired_at=now, payload=payload
    )
    return episode if conn.execute(stmt.returning(alert.c.id)).first() else None


def close_episode(conn: Connection, kind: str, now: datetime) -> str | None:
    """Resolve the open episode of ``kind``; its name, or None if none was open."""
    row = conn.execute(
        update(alert)
        .where(alert.c.kind == kind, alert.c.resolved_at.is_(None))
        .values(resolved_at=now)
        .returning(alert.c.episode)
    ).first()
    return None if row is None else str(row.episode)


def history(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(select(alert).order_by(alert.c.fired_at.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]
