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

    # The gate: per-workspace state, and the last window written (the compare).
    @property
    def gate_state(self) -> str:
        return self._k("gate", "state")

    @property
    def gate_window(self) -> str:
        return self._k("gate", "window")

    @property
    def promotion(self) -> str:
        return self._k("gate", "promotion")

    # Autoscale: its carried state, and the operator's override.
    @property
    def autoscale_state(self) -> str:
        return self._k("autoscale", "state")

    @property
    def capacity_override(self) -> str:
        return self._k("capacity", "override")

    # Routing: the operator's routes (pattern -> queue and its order), before FAIRBEAT_ROUTES.
    @property
    def route_overrides(self) -> str:
        return self._k("routing", "overrides")

    @property
    def route_seq(self) -> str:
        return self._k("routing", "seq")

    # Rate limits: each workspace's theoretical arrival time (GCRA).
    @property
    def rate_tat(self) -> str:
        return self._k("rate", "tat")

    # The health figures maintenance saw last: the autoscaler's guardrail signals.
    @property
    def health_signals(self) -> str:
        return self._k("health", "signals")

    # The fleet: each live worker's job slots and queues (expiring), and who reported.
    @property
    def fleet_workers(self) -> str:
        return self._k("fleet", "workers")

    def fleet_worker(self, hostname: str) -> str:
        return self._k("fleet", "worker", hostname)

    # Set after a failed dispatch run: kicks wait for beat until it expires.
    @property
    def dispatch_backoff(self) -> str:
        return self._k("dispatch", "backoff")

    # Run-time estimates for fairness by worker time (an EWMA per workspace and
    # per workspace and kind; safe to lose: unknown kinds cost the default).
    @property
    def run_time(self) -> str:
        return self._k("drr", "run_time")

    @staticmethod
    def run_time_field(workspace_id: str, kind: str | None = None) -> str:
        # A unit separator cannot appear in a workspace id or kind we accept.
        return workspace_id if kind is None else f"{workspace_id}\x1f{kind}"
