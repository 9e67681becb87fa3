"""Which queue a job kind goes to."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


def route(kind: str, rules: Sequence[tuple[str, str]], default_queue: str) -> str:
    """The queue of the first glob pattern that matches ``kind``, else the default."""
    for pattern, queue in rules:
        if fnmatchcase(kind, pattern):
            return queue
    return default_queue
