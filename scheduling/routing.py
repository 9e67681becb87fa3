"""Which queue a job kind goes to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

OPERATOR = "OPERATOR"  # a route set with `fairbeat routing set`, stored in Redis
CONFIGURED = "FAIRBEAT_ROUTES"
DEFAULT = "DEFAULT_QUEUE"


def route(kind: str, rules: Sequence[tuple[str, str]], default_queue: str) -> str:
    """The queue of the first glob pattern that matches ``kind``, else the default."""
    for pattern, queue in rules:
        if fnmatchcase(kind, pattern):
            return queue
    return default_queue


def effective_rules(
    overrides: Sequence[tuple[str, str]], configured: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The rules a claim is routed by: the operator's first, then the configured ones."""
    return (*overrides, *configured)


@dataclass(frozen=True)
class KindRoute:
    """Where one kind goes, and which rule sent it there."""

    kind: str
    queue: str
    reason_code: str  # OPERATOR, FAIRBEAT_ROUTES or DEFAULT_QUEUE
    pattern: str | None


def route_of(
    kind: str,
    overrides: Sequence[tuple[str, str]],
    configured: Sequence[tuple[str, str]],
    default_queue: str,
) -> KindRoute:
    for source, rules in ((OPERATOR, overrides), (CONFIGURED, configured)):
        for pattern, queue in rules:
            if fnmatchcase(kind, pattern):
                return KindRoute(kind, queue, source, pattern)
    return KindRoute(kind, default_queue, DEFAULT, None)


def routing_view(
    kinds: Iterable[str],
    overrides: Sequence[tuple[str, str]],
    configured: Sequence[tuple[str, str]],
    default_queue: str,
    consumers: Mapping[str, Sequence[tuple[str, int]]],
) -> dict[str, Any]:
    """The rules, where each kind goes, and each queue's consumers (worker, slots)."""
    routes = [route_of(k, overrides, configured, default_queue) for k in sorted(set(kinds))]
    rules = [
        *({"pattern": p, "queue": q, "source": OPERATOR} for p, q in overrides),
        *({"pattern": p, "queue": q, "source": CONFIGURED} for p, q in configured),
    ]
    queues = sorted({default_queue, *(q for _, q in (*overrides, *configured)), *consumers})
    return {
        "rules": rules,
        "default_queue": default_queue,
        "kinds": [vars(r) for r in routes],
        "queues": {
            q: {
                "kinds": [r.kind for r in routes if r.queue == q],
                "workers": [{"worker": w, "slots": n} for w, n in consumers.get(q, ())],
                "slots": sum(n for _, n in consumers.get(q, ())),
            }
            for q in queues
        },
    }
