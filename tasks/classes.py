"""The dispatcher's side of priority classes: read the due jobs per class when
more than one class waits, and turn the plan per class back into claims per
(workspace, stored class).

The policy is scheduling/priority.py. A tick where all PENDING jobs are of one
class (the common case) reads what it read before classes existed, plus one
index probe per class to learn that.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from fairbeat.scheduling.fair import FairPlan, FairState
from fairbeat.scheduling.priority import class_of
from fairbeat.store import class_selection, selection
from fairbeat.store.class_selection import Slot


@dataclass(frozen=True)
class DueReading:
    due: dict[str, int]  # workspace -> due jobs, all classes together
    # class -> workspace -> due jobs; None: one class only, the one-class tick
    by_class: dict[str, dict[str, int]] | None = None
    stored: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # as stored


def read_due(conn: Connection, now: datetime, limit: int, classes: Sequence[str]) -> DueReading:
    """The tick's due jobs: per workspace, and per class when several classes wait."""
    names = class_selection.pending_classes(conn)
    if len({class_of(name, classes) for name in names}) <= 1:
        return DueReading(selection.due_by_workspace(conn, now, limit))
    stored = class_selection.due_by_class(conn, now, limit, names)
    by_class: dict[str, Counter[str]] = defaultdict(Counter)
    due: Counter[str] = Counter()
    for name, per_workspace in stored.items():
        by_class[class_of(name, classes)].update(per_workspace)
        due.update(per_workspace)
    if len(by_class) <= 1:  # the other classes' jobs are not due yet
        return DueReading(dict(due))
    return DueReading(dict(due), {c: dict(n) for c, n in by_class.items()}, stored)


def slots(
    allocations: Mapping[str, Mapping[str, int]],
    stored: Mapping[str, Mapping[str, int]],
    classes: Sequence[str],
) -> dict[Slot, int]:
    """(workspace, stored class) -> jobs to claim. A class's own name comes first;
    names no longer configured (counted as default) after it."""
    out: dict[Slot, int] = {}
    for name, per_workspace in allocations.items():
        names = sorted(
            (s for s in stored if class_of(s, classes) == name), key=lambda s: (s != name, s)
        )
        for workspace, n in per_workspace.items():
            left = n
            for s in names:
                take = min(left, stored[s].get(workspace, 0))
                if take:
                    out[(workspace, s)] = take
                    left -= take
    return out


def keep_class_state(plan: FairPlan, state: FairState) -> FairPlan:
    """A one-class tick's plan, still carrying the per-class state and the tick
    count (plan_fair keeps only its own); no class competed, so no credit carries."""
    kept = dataclasses.replace(
        plan.state, turn=state.turn, by_class=state.by_class, class_credit={}
    )
    return dataclasses.replace(plan, state=kept)


def rank(classes: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(classes)}
