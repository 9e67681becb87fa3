"""The gate's decision log: one row per workspace per evaluated window.

The (window, workspace) pair is unique: a window evaluated twice keeps its
first decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from fairbeat.store.db import insert_ignoring_conflicts
from fairbeat.store.models import gate_decision_table

decision_table = gate_decision_table


@dataclass(frozen=True)
class GateDecision:
    window: str
    workspace_id: str
    from_quota: int
    to_quota: int
    reason_code: str
    evidence: dict[str, Any]
    decided_at: datetime


def record(conn: Connection, decision: GateDecision) -> bool:
    """Write one decision; False when this window already has one for the workspace."""
    stmt = insert_ignoring_conflicts(conn, decision_table).values(
        window=decision.window,
        workspace_id=decision.workspace_id,
        from_quota=decision.from_quota,
        to_quota=decision.to_quota,
        reason_code=decision.reason_code,
        evidence=decision.evidence,
        decided_at=decision.decided_at,
    )
    return conn.execute(stmt.returning(decision_table.c.id)).scalar_one_or_none() is not None


def for_window(conn: Connection, window: str) -> list[GateDecision]:
    """The decisions of one window, by workspace."""
    rows = conn.execute(
        select(decision_table)
        .where(decision_table.c.window == window)
        .order_by(decision_table.c.workspace_id)
    )
    return [
        GateDecision(
            window=r.window,
            workspace_id=r.workspace_id,
            from_quota=r.from_quota,
            to_quota=r.to_quota,
            reason_code=r.reason_code,
            evidence=r.evidence,
            decided_at=r.decided_at,
        )
        for r in rows
    ]
