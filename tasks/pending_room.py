"""What a process remembers of each workspace's pending limit (scheduling/backlog.py)."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection

from fairbeat.scheduling.backlog import uncounted_after
from fairbeat.store import selection

# Past this many workspaces remembered, forget them all: the next enqueue of each counts.
REMEMBERED_MAX = 10_000


class PendingRoom:
    """Per process: how many more enqueues of each workspace may skip the count."""

    def __init__(self) -> None:
        self._uncounted: dict[str, int] = {}
        self._lock = threading.Lock()

    def full(self, conn: Connection, workspace_id: str, limit: int) -> bool:
        """Whether the workspace has ``limit`` PENDING jobs already (then it must refuse)."""
        with self._lock:
            left = self._uncounted.pop(workspace_id, 0)
            if left > 0:
                self._uncounted[workspace_id] = left - 1
                return False
        pending = selection.pending_count(conn, workspace_id, limit)
        if pending >= limit:
            return True
        with self._lock:
            if len(self._uncounted) >= REMEMBERED_MAX:
                self._uncounted.clear()
            if skips := uncounted_after(limit, pending):
                self._uncounted[workspace_id] = skips
        return False
