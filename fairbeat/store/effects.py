"""The effects ledger behind ``once(key)``: each customer-visible effect is recorded once.

A result that JSON cannot hold (a datetime, NaN, an object) does not stop the
record: the effect happened, so the row is written with the result left out
and the reason beside it, and every later attempt is still suppressed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import duplicate_event_table, job_effect_table

job_effect = job_effect_table
duplicate_event = duplicate_event_table

# The column's length: a longer key could not be recorded, so it is refused
# before the effect runs.
EFFECT_KEY_MAX: int = job_effect.c.effect_key.type.length  # type: ignore[attr-defined]
# The reason an unstorable result was left out is cut to this.
UNSTORED_REASON_MAX = 300

EFFECT_SUPPRESSED = "EFFECT_SUPPRESSED"  # a repeat attempt got the recorded result
EFFECT_RACED = "EFFECT_RACED"  # two attempts ran the effect at once: it happened twice

_MISSING = object()


def check_key(key: object) -> str:
    """The key, if the ledger can record it; a ValueError naming the fault otherwise."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"once() key: needs a non-empty string, got {key!r}")
    if len(key) > EFFECT_KEY_MAX:
        raise ValueError(
            f"once() key: {len(key)} characters, over the ledger's {EFFECT_KEY_MAX}; "
            "use a shorter key (e.g. a hash of the long one)"
        )
    return key


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as the effect's result, or None when it can."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        return f"{type(exc).__name__}: {exc}"[:UNSTORED_REASON_MAX]
    return None


def recorded(conn: Connection, workspace_id: str, effect_key: str) -> Any:
    """The stored result of an effect done before (None if it was not storable), or ``_MISSING``."""
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
    """Record an effect as done; False when another attempt recorded it first."""
    reason = unstorable(value)
    result = {"value": value} if reason is None else {"value": None, "unstored": reason}
    stmt = (
        insert_ignoring_conflicts(conn, job_effect)
        .values(
            workspace_id=workspace_id,
            effect_key=check_key(effect_key),
            job_id=job_id,
            result=result,
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
