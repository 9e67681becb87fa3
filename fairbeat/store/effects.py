"""The effects ledger behind ``once(key)``: each customer-visible effect is recorded once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import duplicate_event_table, job_effect_table

job_effect = job_effect_table
duplicate_event = duplicate_event_table

EFFECT_SUPPRESSED = "EFFECT_SUPPRESSED"  # a repeat attempt got the recorded result
EFFECT_RACED = "EFFECT_RACED"  # two attempts ran the effect at once: it happened twice

_MISSING = object()


def recorded(conn: Connection, workspace_id: str, effect_key: str) -> Any:
    """The stored result of an effect done before, or ``_MISSING``."""
    row = conn.execute(
        select(job_effect.c.result).where(
            job_effect.c.workspace_id == workspace_id, job_effect.c.effect_key == effect_key
        )
    ).one_or_none()
    if row is None:
        return _MISSING
    return (row.result or {}).get("value")


def is_missing(value: Any) -> bool:
    return value is _MISSING


def record(
    conn: Connection,
    *,
    workspace_id: str,
    effect_key: str,
    job_id: int,
    value: Any,
    now: datetime,
) -> bool:
    """Record an effect; False when another attempt recorded it first."""
    stmt = (
        insert_ignoring_conflicts(conn, job_effect)
        .values(
            workspace_id=workspace_id,
            effect_key=effect_key,
            job_id=job_id,
            result={"value": value},
            created_at=now,
        )
        .returning(job_effect.c.id)
    )
    return conn.execute(stmt).scalar_one_or_none() is not None


def record_duplicate(
    conn: Connection,
    *,
    workspace_id: str,
    effect_key: str,
    job_id: int,
    fence: int,
    reason: str,
    now: datetime,
) -> None:
    conn.execute(
        duplicate_event.insert().values(
            workspace_id=workspace_id,
            job_id=job_id,
            fence=fence,
            reason=reason,
            detail=effect_key[:400],
            created_at=now,
        )
    )
