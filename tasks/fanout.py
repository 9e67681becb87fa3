"""Fan a tick's claims out as ``fairbeat.run`` messages, in the plan's fair order."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from celery import Celery

from fairbeat.scheduling.priority import DEFAULT_CLASS
from fairbeat.scheduling.routing import route
from fairbeat.store import claiming
from fairbeat.tasks import limits, routes
from fairbeat.tasks.runtime import runtime_of

log = logging.getLogger("fairbeat.dispatch")


def fan_out(app: Celery, claims: list[claiming.Claim]) -> tuple[int, int]:
    """Send run(job_id, fence) for each claim; give back the claims that could not be sent."""
    rt = runtime_of(app)
    settings = rt.settings
    if not claims:
        return 0, 0
    rules = routes.current_rules(rt)
    try:
        # One producer, and on Redis one pipeline, for the whole fan-out: a
        # producer acquired and a Redis client made per message cost most of
        # each send's CPU. The batch is written when the block ends.
        with app.producer_or_acquire() as producer, producer.batch():
            for claim in claims:
                app.send_task(
                    "fairbeat.run",
                    args=(claim.job_id, claim.fence),
                    queue=route(claim.kind, rules, settings.default_queue),
                    producer=producer,
                    **display_options(claim),
                    **limits.send_options(app, claim.kind),
                )
    except Exception:
        # Some of the batch may have reached the broker: a message for a claim
        # handed back finds its job PENDING, or claimed again under a new
        # fence, and is dropped (transitions.start), so handing back all is safe.
        log.exception("send failed", extra={"action": "dispatch.send_failed"})
        with rt.engine.begin() as conn:
            released = sum(claiming.release_claim(conn, c) for c in claims)
        return 0, released
    return len(claims), 0


def display_options(claim: claiming.Claim) -> dict[str, Any]:
    """How monitors (Flower, events) show a run: named by its kind, with readable args.

    The message's real task is still ``fairbeat.run(job_id, fence)``.
    """
    shown = {
        "job_id": claim.job_id,
        "workspace": claim.workspace_id,
        "kind": claim.kind,
        "attempt": claim.attempts + 1,
        "fence": claim.fence,
    }
    return {
        "shadow": claim.kind,
        "argsrepr": repr((claim.job_id, claim.workspace_id)),
        "kwargsrepr": repr(shown),
    }


def fair_order(
    claims: list[claiming.Claim], order: tuple[str, ...], classes: Sequence[str] = ()
) -> list[claiming.Claim]:
    """Interleave the claims as the plan ordered their workspaces; a workspace's
    claims of a higher priority class are sent first."""
    ranks = {name: i for i, name in enumerate(classes)}
    default = ranks.get(DEFAULT_CLASS, 0)
    queues: dict[str, list[claiming.Claim]] = defaultdict(list)
    for claim in sorted(claims, key=lambda c: (ranks.get(c.priority_class, default), c.order_key)):
        queues[claim.workspace_id].append(claim)
    out = []
    for workspace in order:
        if queues[workspace]:
            out.append(queues[workspace].pop(0))
    return out
