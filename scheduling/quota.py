"""A workspace's in-flight quota (operator pin > ladder (Redis) > tier base), its
weight and its start rate limit, from its profile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fairbeat.scheduling.reasons import (
    QUOTA_LADDER,
    QUOTA_LADDER_UNAVAILABLE,
    QUOTA_OPERATOR_PIN,
    QUOTA_TIER_BASE,
)

# As originally locked: default 16, enterprise 64 in-flight jobs.
DEFAULT_TIER_QUOTAS: Mapping[str, int] = {"default": 16, "enterprise": 64}
DEFAULT_TIER = "default"


@dataclass(frozen=True)
class WorkspaceProfile:
    """A workspace's settings row; a workspace with no row has these defaults."""

    tier: str = DEFAULT_TIER
    weight: float = 1.0
    paused: bool = False
    high_quota_enabled: bool = False
    rate_limit_per_s: float | None = None
    # Setting -> what is wrong with it, when the row's limits are unusable
    # (scheduling.limits): the workspace is held, with safe values above.
    misconfigured: Mapping[str, str] | None = None


@dataclass(frozen=True)
class QuotaDecision:
    quota: int
    reason_code: str
    # True when a high-quota workspace sits at base only because the ladder
    # could not be read: its held jobs are explained as LADDER_UNAVAILABLE.
    ladder_fallback: bool = False


def tier_base(tier: str, tier_quotas: Mapping[str, int]) -> int:
    return tier_quotas.get(tier, tier_quotas.get(DEFAULT_TIER, 16))


def resolve_quota(
    *,
    tier: str,
    high_quota_enabled: bool,
    ladder_quota: int | None,
    ladder_available: bool,
    pin: int | None,
    tier_quotas: Mapping[str, int] = DEFAULT_TIER_QUOTAS,
) -> QuotaDecision:
    if pin is not None:
        return QuotaDecision(max(0, pin), QUOTA_OPERATOR_PIN)
    base = tier_base(tier, tier_quotas)
    if not high_quota_enabled:
        return QuotaDecision(base, QUOTA_TIER_BASE)
    if not ladder_available:
        return QuotaDecision(base, QUOTA_LADDER_UNAVAILABLE, ladder_fallback=True)
    if ladder_quota is None:
        return QuotaDecision(base, QUOTA_TIER_BASE)
    return QuotaDecision(max(base, ladder_quota), QUOTA_LADDER)


@dataclass(frozen=True)
class Resolved:
    quotas: Mapping[str, QuotaDecision]
    weights: Mapping[str, float]
    ladder_available: bool


def resolve_quotas(
    workspace_ids: Iterable[str],
    profiles: Mapping[str, WorkspaceProfile],
    *,
    ladder: Mapping[str, int],
    pins: Mapping[str, int],
    ladder_available: bool,
    tier_quotas: Mapping[str, int] = DEFAULT_TIER_QUOTAS,
    tier_weights: Mapping[str, float] | None = None,
) -> Resolved:
    """Each workspace's quota and weight (its own weight times its tier's)."""
    quotas, weights = {}, {}
    for workspace in workspace_ids:
        profile = profiles.get(workspace, WorkspaceProfile())
        quotas[workspace] = resolve_quota(
            tier=profile.tier,
            high_quota_enabled=profile.high_quota_enabled,
            ladder_quota=ladder.get(workspace),
            ladder_available=ladder_available,
            pin=pins.get(workspace),
            tier_quotas=tier_quotas,
        )
        weights[workspace] = profile.weight * (tier_weights or {}).get(profile.tier, 1.0)
    return Resolved(quotas, weights, ladder_available)


def rate_limit_of(profile: WorkspaceProfile, tier_rate_limits: Mapping[str, float]) -> float | None:
    """Starts per second the workspace may take; None: no limit. The workspace's
    own limit wins over its tier's, and 0 there means "no limit"."""
    if profile.rate_limit_per_s is not None:
        return profile.rate_limit_per_s if profile.rate_limit_per_s > 0 else None
    return tier_rate_limits.get(profile.tier)
