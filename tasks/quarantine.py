"""Dead-letter the jobs no loop can load (store/poison.py), and say so in the log."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Connection

from fairbeat.store import poison

log = logging.getLogger("fairbeat.quarantine")


def sweep(conn: Connection, now: datetime, *, thorough: bool = False) -> int:
    """Quarantine in the caller's transaction; the number of jobs dead-lettered."""
    found = poison.quarantine(conn, now, thorough=thorough)
    for q in found:
        log.error(
            "job %s quarantined: %s",
            q.job_id,
            q.error,
            extra={
                "action": "quarantine.job",
                "job_id": q.job_id,
                "workspace_id": q.workspace_id,
                "reason_code": q.reason_code,
            },
        )
    return len(found)
