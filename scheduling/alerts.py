"""Alert episodes: fire once when a condition starts, resolve once when it ends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STALE_RUN = "STALE_RUN"
QUEUE_AGE_BREACH = "QUEUE_AGE_BREACH"

FIRE = "FIRE"
RESOLVE = "RESOLVE"


@dataclass(frozen=True)
class Condition:
    kind: str
    breached: bool
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertAction:
    kind: str
    action: str  # FIRE or RESOLVE
    evidence: Mapping[str, Any]


def alert_actions(conditions: list[Condition], open_kinds: frozenset[str]) -> list[AlertAction]:
    """One FIRE per condition that breached with no open episode; one RESOLVE per
    open episode whose condition no longer breaches. Nothing while it persists."""
    actions = []
    for condition in sorted(conditions, key=lambda c: c.kind):
        is_open = condition.kind in open_kinds
        if condition.breached and not is_open:
            actions.append(AlertAction(condition.kind, FIRE, condition.evidence))
        elif not condition.breached and is_open:
            actions.append(AlertAction(condition.kind, RESOLVE, condition.evidence))
    return actions
