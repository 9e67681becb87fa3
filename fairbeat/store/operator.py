"""The audit trail of operator actions: who, when, what, why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from fairbeat.store.models import operator_action_table

action_table = operator_action_table


def record(
    conn: Connection,
    *,
    at: datetime,
    who: str,
    action: str,
    why: str,
    target: str | None = None,
    value: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        action_table.insert().values(
            at=at, who=who, action=action, target=target, value=value, why=why
        )
    )


def trail(
    conn: Connection,
    *,
    since: datetime | None = None,
    target: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest actions first, optionally since a time and on one target."""
    query = select(action_table).order_by(action_table.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(action_table.c.at >= since)
    if target is not None:
        query = query.where(action_table.c.target == target)
    return [dict(r) for r in conn.execute(query).mappings()]


def recent(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(action_table).order_by(action_table.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
