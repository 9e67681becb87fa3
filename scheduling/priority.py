"""Priority classes across workspaces: how a tick's claims split between classes.

Classes are ordered, highest first (e.g. critical, default, bulk). A higher
class is served first across all workspaces, but every lower class that has
due jobs keeps a guaranteed minimum share of the tick's room (``min_share``
of it, rounded up, at most what it has due), so no class starves. What a
class leaves unused goes to the classes below it. Within a class the fair
plan (``plan_fair``) shares its budget between workspaces; each workspace's
quota holds across classes because the caller counts what higher classes
took as in flight.

Not yet wired into the dispatcher or selection: this is the policy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CLASS_BUDGETS = "CLASS_BUDGETS"
NO_ROOM = "NO_ROOM"


@dataclass(frozen=True)
class ClassBudgets:
    budgets: Mapping[str, int]  # class -> most claims it may take this tick
    reserved: Mapping[str, int]  # class -> the share guaranteed to it
    reason_code: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def _reserves(
    classes: Sequence[str], due: Mapping[str, int], room: int, min_share: float, turn: int
) -> dict[str, int]:
    """Each lower class's guaranteed share. When they cannot all fit (a room of
    one, say), ``turn`` rotates which come first, so over as many ticks as there
    are lower classes each gets its turn."""
    per_class = math.ceil(min_share * room) if min_share > 0 else 0
    reserved: dict[str, int] = {}
    left = room
    lower = list(classes[1:])
    start = turn % len(lower) if lower else 0
    for name in lower[start:] + lower[:start]:
        take = min(per_class, max(0, due.get(name, 0)), left)
        if take:
            reserved[name] = take
            left -= take
    return reserved


def class_budgets(
    classes: Sequence[str],
    due: Mapping[str, int],
    room: int,
    min_share: float,
    turn: int = 0,
) -> ClassBudgets:
    """Split ``room`` claims between ``classes`` (highest first) given each one's due
    jobs; ``turn`` is any counter that advances by one per tick (deterministic)."""
    room = max(0, room)
    reserved = _reserves(classes, due, room, min_share, turn)
    budgets: dict[str, int] = {}
    left = room
    for i, name in enumerate(classes):
        below = sum(reserved.get(lower, 0) for lower in classes[i + 1 :])
        wanted = max(0, due.get(name, 0))
        take = min(wanted, max(reserved.get(name, 0), left - below), left)
        budgets[name] = take
        left -= take
    return ClassBudgets(
        budgets=budgets,
        reserved=reserved,
        reason_code=CLASS_BUDGETS if room else NO_ROOM,
        evidence={"room": room, "min_share": min_share, "left": left},
    )
