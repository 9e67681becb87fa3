"""Each workspace's quota and weight, as the dispatcher and the exporter see them:
the ladder and pins read from Redis, resolved by scheduling.quota."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis import RedisError

from fairbeat.scheduling.quota import Resolved, WorkspaceProfile, resolve_quotas
from fairbeat.tasks.runtime import Runtime

__all__ = ["Resolved", "resolve"]


def resolve(
    rt: Runtime,
    profiles: Mapping[str, WorkspaceProfile],
    workspace_ids: Iterable[str],
    redis_ok: bool = True,
) -> Resolved:
    """Operator pin > ladder (Redis) > tier base; with Redis unreadable, base quotas."""
    ids = list(workspace_ids)
    ladder: dict[str, int] = {}
    pins: dict[str, int] = {}
    ladder_ok = redis_ok
    if redis_ok:
        try:
            ladder, pins = rt.live.quotas(ids)
        except RedisError:
            ladder_ok = False
    return resolve_quotas(
        ids,
        profiles,
        ladder=ladder,
        pins=pins,
        ladder_available=ladder_ok,
        tier_quotas=rt.settings.tier_quotas,
        tier_weights=rt.settings.tier_weights,
    )
