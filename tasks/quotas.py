"""Each workspace's quota and weight, as the dispatcher and the exporter see them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis import RedisError

from fairbeat.scheduling.quota import QuotaDecision, resolve_quota
from fairbeat.store.selection import WorkspaceProfile
from fairbeat.tasks.runtime import Runtime


@dataclass(frozen=True)
class Resolved:
    quotas: dict[str, QuotaDecision]
    weights: dict[str, float]
    ladder_available: bool


def resolve(
    rt: Runtime,
    profiles: dict[str, WorkspaceProfile],
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
    settings = rt.settings
    quotas, weights = {}, {}
    for workspace in ids:
        profile = profiles.get(workspace, WorkspaceProfile())
        quotas[workspace] = resolve_quota(
            tier=profile.tier,
            high_quota_enabled=profile.high_quota_enabled,
            ladder_quota=ladder.get(workspace),
            ladder_available=ladder_ok,
            pin=pins.get(workspace),
            tier_quotas=settings.tier_quotas,
        )
        weights[workspace] = profile.weight * settings.tier_weights.get(profile.tier, 1.0)
    return Resolved(quotas, weights, ladder_ok)
