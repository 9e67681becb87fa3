"""Concurrency keys: which of a tick's candidate jobs may start without any key
going over its limit.

A key names a scope: by default the job's own workspace (``"user:7"`` in two
workspaces is two keys), and ``global:`` keys are shared by every workspace
(``"global:provider-x"``). A job may carry several keys; it is admitted only
if every one of them has room. Pure: the caller reads the in-flight counts and
the candidates in the claim's transaction and hands them in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fairbeat.scheduling.reasons import KEY_LIMIT

GLOBAL_PREFIX = "global:"
GLOBAL_SCOPE = ""

# (scope, key): what one in-flight count is kept for.
ScopedKey = tuple[str, str]


def scope_of(workspace_id: str, key: str) -> str:
    """The scope a key counts in: '' for a ``global:`` key, else the workspace."""
    return GLOBAL_SCOPE if key.startswith(GLOBAL_PREFIX) else workspace_id


@dataclass(frozen=True)
class KeyedCandidate:
    """A due job the plan would claim, with its keys and each key's own limit."""

    job_id: int
    workspace_id: str
    keys: Mapping[ScopedKey, int] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyAdmission:
    admitted: tuple[int, ...]  # job ids, in the candidates' order
    held: Mapping[str, int]  # workspace -> candidates left waiting on a key
    reason_code: str
    evidence: Mapping[str, object]


def limit_of(key: ScopedKey, own: int, named: Mapping[str, int]) -> int:
    """A limit named in configuration wins over the one the job was enqueued with."""
    return named.get(key[1], own)


def full_keys(
    in_flight: Mapping[ScopedKey, int], limits: Mapping[ScopedKey, int], named: Mapping[str, int]
) -> frozenset[ScopedKey]:
    """Keys with no room left: no job that carries one can be claimed this tick."""
    return frozenset(k for k, n in in_flight.items() if n >= limit_of(k, limits.get(k, n), named))


def admit(
    candidates: Sequence[KeyedCandidate],
    wanted: Mapping[str, int],
    in_flight: Mapping[ScopedKey, int],
    named: Mapping[str, int],
) -> KeyAdmission:
    """Admit candidates in order, at most ``wanted[workspace]`` each, while every
    key of the candidate stays within its limit counting this tick's admissions."""
    used: Counter[ScopedKey] = Counter(in_flight)
    taken: Counter[str] = Counter()
    held: Counter[str] = Counter()
    admitted: list[int] = []
    for c in candidates:
        if taken[c.workspace_id] >= wanted.get(c.workspace_id, 0):
            continue
        if any(used[k] >= limit_of(k, own, named) for k, own in c.keys.items()):
            held[c.workspace_id] += 1
            continue
        used.update(c.keys.keys())
        taken[c.workspace_id] += 1
        admitted.append(c.job_id)
    return KeyAdmission(
        admitted=tuple(admitted),
        held=dict(held),
        reason_code=KEY_LIMIT if held else "ADMITTED",
        evidence={"candidates": len(candidates), "admitted": len(admitted)},
    )
