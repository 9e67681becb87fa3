"""What a dispatch tick and a dispatch run report: typed, and stored as JSON.

``TickReport`` is one tick (one structured log record); ``RunReport`` is one
run (its function_run row): totals and the last ticks. ``to_dict`` gives the
JSON that is stored and logged; ``from_dict`` reads one back, old rows
included (a missing field takes its default), for the exporter and the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fairbeat.scheduling.reasons import PARTITION_CAP

# The function_run row keeps the last ticks of a run in its report.
REPORT_TICKS = 20


@dataclass(frozen=True)
class TickReport:
    reason_code: str = ""
    selected: int = 0  # due jobs seen
    planned: int = 0
    claimed: int = 0
    lost_claims: int = 0
    sent: int = 0
    released: int = 0  # claimed but handed back: the send failed
    unclaimed: Mapping[str, int] = field(default_factory=dict)  # reason code -> due jobs left
    capacity: int = 0  # the autoscaler's global capacity
    capacity_reason: str = ""
    desired_workers: int = 0
    fleet_capacity: int = 0  # what the live workers can start in time
    fleet_reason: str = ""
    fleet_slots: int = 0
    in_flight: int = 0
    workspaces_due: int = 0
    workspaces_served: int = 0
    top_workspace: str | None = None
    top_workspace_share: float = 0.0
    ladder_available: bool = True
    borrowed: Mapping[str, int] = field(default_factory=dict)
    cost_reason: str = ""  # how job costs were set: COST_BY_COUNT, COST_ESTIMATED, ...
    duration_s: float = 0.0
    # Priority classes, when more than one had due jobs: each one's budget of
    # the tick's claims, and what it claimed (empty: a one-class tick).
    class_budgets: Mapping[str, int] = field(default_factory=dict)
    class_claimed: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "unclaimed": dict(self.unclaimed),
            "borrowed": dict(self.borrowed),
            "class_budgets": dict(self.class_budgets),
            "class_claimed": dict(self.class_claimed),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TickReport:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known and v is not None})


@dataclass(frozen=True)
class RunReport:
    trigger: str = ""
    fence: int = 0
    skipped: str | None = None  # why the run did not tick: BUSY, NOTHING_NEW, ...
    ticks: int = 0
    claimed: int = 0
    sent: int = 0
    released: int = 0
    lost_claims: int = 0
    last_ticks: tuple[TickReport, ...] = ()

    @classmethod
    def skip(cls, why: str) -> RunReport:
        return cls(skipped=why)

    @classmethod
    def of(cls, trigger: str, fence: int, ticks: list[TickReport]) -> RunReport:
        return cls(
            trigger=trigger,
            fence=fence,
            ticks=len(ticks),
            claimed=sum(t.claimed for t in ticks),
            sent=sum(t.sent for t in ticks),
            released=sum(t.released for t in ticks),
            lost_claims=sum(t.lost_claims for t in ticks),
            last_ticks=tuple(ticks[-REPORT_TICKS:]),
        )

    def to_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "skipped"}
        out["last_ticks"] = [t.to_dict() for t in self.last_ticks]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunReport:
        known = {f.name for f in fields(cls)} - {"last_ticks"}
        ticks = tuple(TickReport.from_dict(t) for t in raw.get("last_ticks") or ())
        values = {k: v for k, v in raw.items() if k in known and v is not None}
        return cls(**values, last_ticks=ticks)


def more_room(report: TickReport, batch: int) -> bool:
    """Whether the next tick can claim at once: this one filled the claim batch,
    or claimed all it planned while the per-tick partition cap, not the room,
    held a workspace back (one busy workspace alone must not leave slots idle
    for a debounce per ``FAIRBEAT_PARTITION_CAP`` jobs)."""
    if report.claimed == batch:
        return True
    room = min(report.capacity, report.fleet_capacity) - report.in_flight
    capped = report.unclaimed.get(PARTITION_CAP, 0) > 0
    return capped and 0 < report.claimed == report.planned < min(room, batch)
