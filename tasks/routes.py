"""The routes a claim is sent by: the operator's (Redis), then FAIRBEAT_ROUTES.

Read once per tick that sends claims, so ``fairbeat routing set`` takes effect
for the next claims without restarting anything.
"""

from __future__ import annotations

import logging

from redis import RedisError

from fairbeat.scheduling.routing import effective_rules
from fairbeat.tasks.runtime import Runtime

log = logging.getLogger("fairbeat.routing")


def current_rules(rt: Runtime) -> tuple[tuple[str, str], ...]:
    """The operator's routes before the configured ones; the configured alone without Redis."""
    try:
        overrides = rt.control.route_overrides()
    except (RedisError, ValueError) as exc:
        log.warning("operator routes unreadable: %s", exc, extra={"action": "routing.unread"})
        overrides = []
    return effective_rules(overrides, rt.settings.routes)
