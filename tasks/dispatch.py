"""``fairbeat.dispatch``: claim due jobs and send each to its routed queue."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, Task, shared_task

from scheduling.routing import route
from store import jobs
from tasks.runtime import runtime_of

log = logging.getLogger("fairbeat.dispatch")


def fan_out(app: Celery, claims: list[jobs.Claim]) -> tuple[int, int]:
    """Send run(job_id, fence) for each claim; give back the claims that could not be sent."""
    rt = runtime_of(app)
    settings = rt.settings
    sent = 0
    for index, claim in enumerate(claims):
        queue = route(claim.kind, settings.routes, settings.default_queue)
        try:
            app.send_task("fairbeat.run", args=(claim.job_id, claim.fence), queue=queue)
        except Exception:
            log.exception("send failed", extra={"action": "dispatch.send_failed"})
            with rt.engine.begin() as conn:
                released = sum(jobs.release_claim(conn, c) for c in claims[index:])
            return sent, released
        sent += 1
    return sent, 0


def tick(app: Celery) -> dict[str, Any]:
    """One dispatch tick: claim the oldest due jobs up to the batch, send them."""
    rt = runtime_of(app)
    started = time.monotonic()
    now = rt.now()
    with rt.engine.begin() as conn:
        claims = jobs.claim_oldest_due(conn, now, rt.settings.claim_batch)
    sent, released = fan_out(app, claims)
    report = {
        "claimed": len(claims),
        "sent": sent,
        "released": released,
        "duration_s": round(time.monotonic() - started, 4),
    }
    log.info("dispatch tick", extra={"action": "dispatch.tick", **report})
    return report


@shared_task(name="fairbeat.dispatch", bind=True)
def dispatch(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    return tick(self.app)
