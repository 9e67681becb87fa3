"""Optionally resize running workers to the autoscaler's capacity (opt-in).

Workers started with ``celery worker --autoscale=MAX,MIN`` take new bounds
over Celery's remote control; each gets an equal share of the capacity, at
two in-flight jobs per pool process. Without ``--autoscale`` a worker answers
with an error and keeps its fixed pool: publish ``fairbeat_desired_workers``
to an external autoscaler instead.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from celery import Celery

log = logging.getLogger("fairbeat.pool")

PING_TIMEOUT_S = 0.5
IN_FLIGHT_PER_PROCESS = 2


def apply_capacity(app: Celery, capacity: int) -> list[dict[str, Any]]:
    """Broadcast per-worker pool bounds for ``capacity``; returns the workers' replies."""
    workers = app.control.ping(timeout=PING_TIMEOUT_S) or []
    if not workers:
        return []
    per_worker = max(1, math.ceil(capacity / IN_FLIGHT_PER_PROCESS / len(workers)))
    replies: list[dict[str, Any]] = (
        app.control.autoscale(per_worker, 1, reply=True, timeout=PING_TIMEOUT_S) or []
    )
    log.info(
        "pool bounds sent",
        extra={
            "action": "autoscale.pool",
            "max": per_worker,
            "workers": len(workers),
            "replies": replies,
        },
    )
    return replies
