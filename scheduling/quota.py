"""A workspace's in-flight quota: operator pin > ladder (Redis) > tier base."""

from __future__ import annotations

from collections.abc import Mapping
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
