"""What py-spy's raw samples of the worker say about where its pool children spend CPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def summary(path: Path, top: int = 15) -> dict[str, Any]:
    """Where the worker children's main threads (the slots) spent sampled CPU: by library
    of the innermost frame, and the fairbeat functions on the stack most often (inclusive).

    py-spy runs without ``--idle``: a slot waiting on a socket or for its next
    message is not sampled, so the shares are of time on (or queued for) a CPU.
    """
    by_library: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if sum(f.startswith("process ") for f in frames) < 2:
            continue  # the worker's main process, not a pool child
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if frames and frames[0].startswith(("_bootstrap ", "Thread._bootstrap ")):
            continue  # a thread the child started (heartbeats, the probe), not its slot
        n = int(count)
        samples += n
        by_library[_library(frames[-1]) if frames else "?"] += n
        for name in {f.split(" (")[0] + " " + _library(f) for f in frames if "fairbeat" in f}:
            inclusive[name] += n
    share = {k: round(v / samples, 3) for k, v in by_library.most_common()} if samples else {}
    return {
        "child_samples": samples,
        "self_by_library": share,
        "fairbeat_inclusive": {k: round(v / samples, 3) for k, v in inclusive.most_common(top)},
    }


def _library(frame: str) -> str:
    """``sqlalchemy``, ``fairbeat/tasks/run.py``…: where a py-spy frame's code lives."""
    path = frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    for ours in ("fairbeat/", "tasks/", "scheduling/", "bench/"):
        if f"/{ours}" in path:
            return ours + path.split(f"/{ours}", 1)[1]
    return "python" if "/lib/python" in path else path
