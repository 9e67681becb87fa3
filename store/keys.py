"""Every Redis key fairbeat uses, built in one place under one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "fairbeat"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # Dispatch single flight: the lease holder's fence, and the fence counter.
    @property
    def dispatch_lock(self) -> str:
        return self._k("dispatch", "lock")

    @property
    def dispatch_fence(self) -> str:
        return self._k("dispatch", "fence")

    # Continuation: kicks bump a sequence; a debounce key limits messages.
    @property
    def kick_debounce(self) -> str:
        return self._k("dispatch", "kick")

    @property
    def kick_seq(self) -> str:
        return self._k("dispatch", "kick_seq")

    @property
    def kick_seen(self) -> str:
        return self._k("dispatch", "kick_seen")

    # Deficit round robin state carried across ticks (safe to lose).
    @property
    def drr_deficits(self) -> str:
        return self._k("drr", "deficits")

    @property
    def drr_cursor(self) -> str:
        return self._k("drr", "cursor")

    # Quotas: the ladder the gate writes, and operator pins.
    @property
    def ladder_quota(self) -> str:
        return self._k("ladder", "quota")

    @property
    def quota_pins(self) -> str:
        return self._k("quota", "pin")
