"""The canary packet's plots: queue age per workspace, quota rungs, capacity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from fairbeat.canary import Samples

# Beyond this many workspaces a legend is noise: the hottest are drawn, the rest in grey.
NAMED_LINES = 8


def _save(path: Path, title: str, ylabel: str) -> None:
    plt.title(title)
    plt.xlabel("seconds since the burst")
    plt.ylabel(ylabel)
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(path, dpi=100)
    plt.close()


def plot_packet(out: Path, samples: Samples) -> None:
    t = samples.t_s
    plt.figure(figsize=(9, 4))
    ranked = sorted(samples.oldest_wait_s.items(), key=lambda kv: -max(kv[1], default=0))
    for n, (workspace, waits) in enumerate(ranked):
        named = n < NAMED_LINES
        plt.plot(t, waits, label=workspace if named else None, color=None if named else "0.8")
    plt.axhline(300, color="red", linestyle=":", label="limit (300 s)")
    plt.legend(fontsize=7, loc="upper right")
    _save(out / "queue_age.png", "Oldest waiting job per workspace", "seconds")
    plt.figure(figsize=(9, 3))
    for workspace, quotas in sorted(samples.quotas.items())[:NAMED_LINES]:
        plt.step(t, quotas, where="post", label=workspace)
    plt.legend(fontsize=7, loc="upper right")
    _save(out / "quota_rungs.png", "In-flight quota per workspace (ladder rung)", "jobs")
    plt.figure(figsize=(9, 3))
    plt.step(t, [c if c is not None else float("nan") for c in samples.capacity], where="post")
    _save(out / "capacity.png", "Global in-flight capacity", "jobs in flight")
