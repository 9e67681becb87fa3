"""Retention: how old a finished row must be before maintenance may prune it.

Pure: durations in, cutoff times out. Each table's cutoff is the older of
"now minus its retention" and the evidence floor, the start of the oldest
window the gate or the health figures still read (the previous gate window,
or the health window if that reaches further back). Unfinished jobs, running
runs and open alert episodes have no cutoff at all: the store never selects
them, whatever the times say.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RETENTION = "RETENTION"
OLDER_THAN_OVERRIDE = "OLDER_THAN_OVERRIDE"

# The tables pruned, in the order maintenance prunes them.
TABLES = (
    "job_succeeded",
    "job_failed",
    "job_cancelled",
    "function_run",
    "duplicate_event",
    "gate_decision",
    "alert",
    "health_snapshot",
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """``"0s"``, ``"15m"``, ``"36h"``, ``"7d"``, ``"2w"``, ``"1d12h"`` or plain seconds, in seconds.

    Raises ValueError with a one-line message for anything else.
    """
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(
                f"not a duration: {text!r}; use a number and a unit s, m, h, d or w (e.g. 15m, 7d)"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {text!r}; it must be zero or more")
    return seconds


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of finished row is kept, in seconds, and the windows still read."""

    succeeded_s: float
    failed_s: float
    cancelled_s: float
    function_run_s: float
    duplicate_event_s: float
    gate_decision_s: float
    alert_s: float
    health_snapshot_s: float
    gate_window_s: int
    health_window_s: float

    def kept_s(self, table: str) -> float:
        return {
            "job_succeeded": self.succeeded_s,
            "job_failed": self.failed_s,
            "job_cancelled": self.cancelled_s,
            "function_run": self.function_run_s,
            "duplicate_event": self.duplicate_event_s,
            "gate_decision": self.gate_decision_s,
            "alert": self.alert_s,
            "health_snapshot": self.health_snapshot_s,
        }[table]


@dataclass(frozen=True)
class Cutoffs:
    """Rows finished before ``before[table]`` may go; nothing at or after ``evidence_floor``."""

    before: dict[str, datetime]
    evidence_floor: datetime
    reason_code: str
    evidence: dict[str, object]


def previous_gate_window_start(now: datetime, gate_window_s: int) -> datetime:
    """The start of the window that ended most recently: the one the gate evaluates next."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % gate_window_s - gate_window_s, UTC)


def evidence_floor(now: datetime, gate_window_s: int, health_window_s: float) -> datetime:
    """The oldest moment the gate (previous and current window) or the health figures read."""
    return min(
        previous_gate_window_start(now, gate_window_s),
        now - timedelta(seconds=health_window_s),
    )


def cutoffs(policy: RetentionPolicy, now: datetime, older_than_s: float | None = None) -> Cutoffs:
    """Each table's cutoff at ``now``; ``older_than_s`` stands in for every retention."""
    floor = evidence_floor(now, policy.gate_window_s, policy.health_window_s)
    before: dict[str, datetime] = {}
    for table in TABLES:
        kept = policy.kept_s(table) if older_than_s is None else older_than_s
        before[table] = min(now - timedelta(seconds=kept), floor)
    return Cutoffs(
        before=before,
        evidence_floor=floor,
        reason_code=RETENTION if older_than_s is None else OLDER_THAN_OVERRIDE,
        evidence={
            "now": now.isoformat(),
            "evidence_floor": floor.isoformat(),
            "older_than_s": older_than_s,
            "held_by_floor": sorted(t for t in TABLES if before[t] == floor),
        },
    )


def retained_rows_bound(kept_s: float, floor_s: float, rows_per_s: float, slack: int) -> int:
    """Most rows a table holds in steady state: what arrives over its retention plus the
    evidence window, and ``slack`` rows still waiting for the next prune."""
    return math.ceil((max(kept_s, 0.0) + floor_s) * rows_per_s) + slack
