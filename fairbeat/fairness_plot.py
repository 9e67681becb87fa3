"""Render the count-vs-time fairness simulation (scheduling.fairsim) as one PNG.

Two panels, one per policy: each backlogged workspace's worker seconds per
window, so an even split shows as overlapping lines.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

# No display on a server or in CI: render to a file only. Before pyplot.
matplotlib.use("Agg")

import matplotlib.pyplot as plt

from fairbeat.scheduling.fairsim import CostResult, CostScenario


def plot_fairness(sc: CostScenario, results: Mapping[str, CostResult], path: str) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(12, 4), sharey=True, constrained_layout=True)
    for ax, (mode, result) in zip(axes, results.items(), strict=True):
        for workspace, job_s in sorted(sc.job_s.items()):
            xs = [k * sc.window_s for k in range(len(result.windows))]
            ys = [w[workspace] for w in result.windows]
            ax.plot(xs, ys, label=f"{workspace} ({job_s * 1000:g} ms jobs)")
        ax.set_title(f"FAIRBEAT_FAIRNESS={mode}: worker-seconds Jain {result.time_jain}")
        ax.set_xlabel("time (s)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"worker seconds per {sc.window_s:g} s window")
    axes[-1].legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
