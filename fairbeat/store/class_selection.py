"""Selection per priority class: which classes have PENDING jobs, the due jobs
per (class, workspace), and the claim per (workspace, class).

Read only when more than one class has PENDING jobs; the one-class tick is
``selection.py``'s, plus the first query here (an index probe per class).
Each query costs in proportion to classes x active workspaces, never to the
backlog:

- the classes come from a loose index scan on ``ix_job_class_due``;
- each class's workspaces from another, and each (class, workspace)'s due
  count stops at ``limit`` on ``ix_job_class_workspace_due``, a range scan
  that stops at now;
- the claim takes each (workspace, class)'s planned jobs in the workspace's
  own order through ``ix_job_class_due``.

Classes here are as stored; which configured class a stored name counts as
is the dispatcher's business (``scheduling.priority.class_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from fairbeat.store import selection
from fairbeat.store.claiming import Claim
from fairbeat.store.times import LOWEST_TIME

_PENDING_CLASSES = text(
    """
    WITH RECURSIVE c(name) AS (
        SELECT (SELECT min(priority_class) FROM job WHERE status = 'PENDING')
        UNION ALL
        SELECT (SELECT min(j.priority_class) FROM job j
                WHERE j.status = 'PENDING' AND j.priority_class > c.name)
        FROM c WHERE c.name IS NOT NULL
    )
    SELECT name FROM c WHERE name IS NOT NULL
    """
)

_DUE_IN_CLASS = selection.due_statement(by_class=True)

Slot = tuple[str, str]  # (workspace, stored class)


def pending_classes(conn: Connection) -> list[str]:
    """The stored classes of PENDING jobs, due or not (one index probe per class)."""
    return [str(name) for name in conn.execute(_PENDING_CLASSES).scalars()]


def due_by_class(
    conn: Connection, now: datetime, limit: int, classes: list[str]
) -> dict[str, dict[str, int]]:
    """Stored class -> workspace -> due jobs, counted up to ``limit`` each."""
    out: dict[str, dict[str, int]] = {}
    for name in classes:
        params = {"cls": name, "now": now, "lowest": LOWEST_TIME, "limit": limit}
        rows = conn.execute(_DUE_IN_CLASS, params).all()
        due = {r.workspace_id: int(r.due) for r in rows if r.due}
        if due:
            out[name] = due
    return out


def claim_by_class(
    conn: Connection,
    now: datetime,
    plan: Mapping[Slot, int],
    run: tuple[int, int] | None = None,
    named_limits: Mapping[str, int] | None = None,
    key_held: dict[str, int] | None = None,
) -> list[Claim]:
    """Claim ``plan[(workspace, class)]`` due jobs of each workspace's jobs stored
    with that class, in the workspace's own order (``selection.claim_slots``)."""
    slots: dict[selection.Slot, int] = {(w, c): n for (w, c), n in plan.items()}
    return selection.claim_slots(conn, now, slots, run, named_limits, key_held)
