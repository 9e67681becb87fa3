"""A workspace's own limits (weight, start rate), checked before any arithmetic uses them.

The workspace table can be written by SQL as well as by the CLI, so a weight
of NaN or a rate limit of ``inf`` can reach the dispatcher. Such a workspace
is held (``WORKSPACE_MISCONFIGURED``) with the offending value as evidence,
and the values handed on are safe defaults, so that no tick, gate run or
scrape does arithmetic on them. The CLI refuses the same values at the door
with the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fairbeat.scheduling.fair import MIN_WEIGHT
from fairbeat.scheduling.reasons import WORKSPACE_MISCONFIGURED

# Weights above this are refused (so are those below the fair plan's
# MIN_WEIGHT): one visit's credit must never outgrow a float.
MAX_WEIGHT = 100.0
# Start rates a GCRA can keep without its schedule running off a float:
# one start every ~17 minutes up to a million a second.
MIN_RATE_PER_S = 0.001
MAX_RATE_PER_S = 1_000_000.0
DEFAULT_WEIGHT = 1.0


@dataclass(frozen=True)
class WorkspaceLimits:
    weight: float  # safe to use: the workspace's own, or the default when held
    rate_limit_per_s: float | None  # None: no limit of its own
    reason_code: str | None  # WORKSPACE_MISCONFIGURED, or None when every value is usable
    evidence: Mapping[str, str] = field(default_factory=dict)  # setting -> what is wrong


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def weight_problem(value: object) -> str | None:
    """Why ``value`` is no usable fair-share weight, or None."""
    number = _number(value)
    if number is None or not math.isfinite(number):
        return f"weight {value!r} is not a finite number; use {MIN_WEIGHT:g} to {MAX_WEIGHT:g}"
    if not MIN_WEIGHT <= number <= MAX_WEIGHT:
        return f"weight {value!r} is outside {MIN_WEIGHT:g} to {MAX_WEIGHT:g}"
    return None


def rate_limit_problem(value: object) -> str | None:
    """Why ``value`` is no usable start rate limit (jobs/s), or None. 0 means "none set"."""
    number = _number(value)
    if number is None or not math.isfinite(number):
        return f"rate limit {value!r} is not a finite number of jobs per second"
    if number == 0:
        return None
    if not MIN_RATE_PER_S <= number <= MAX_RATE_PER_S:
        return (
            f"rate limit {value!r} is outside {MIN_RATE_PER_S:g} to {MAX_RATE_PER_S:g} "
            "jobs per second (0 clears it)"
        )
    return None


def check_limits(weight: object, rate_limit_per_s: object) -> WorkspaceLimits:
    """The limits to use for a workspace whose row holds ``weight`` and ``rate_limit_per_s``.

    A rate limit of None or 0 is "none of its own". Any other unusable value
    holds the workspace: its jobs wait as WORKSPACE_MISCONFIGURED until an
    operator fixes the row, and everyone else is served as usual.
    """
    problems: dict[str, str] = {}
    if (problem := weight_problem(weight)) is not None:
        problems["weight"] = problem
    if rate_limit_per_s is not None and (problem := rate_limit_problem(rate_limit_per_s)):
        problems["rate_limit_per_s"] = problem
    if problems:
        return WorkspaceLimits(DEFAULT_WEIGHT, None, WORKSPACE_MISCONFIGURED, problems)
    return WorkspaceLimits(
        _number(weight) or DEFAULT_WEIGHT, _number(rate_limit_per_s) or None, None
    )
