"""Render a simulation run (scheduling.simulation) as one PNG of three panels.

Queue age per workspace, the quota ladder of the high-quota workspaces and
the global capacity, on one time axis in minutes, with the scenario's
incidents shaded in every panel so cause and effect line up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

# No display on a server or in CI: render to a file only. Before pyplot.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from fairbeat.scheduling.autoscale import GUARDRAILS, HOLD, HOLD_COOLDOWN, OPERATOR_PIN
from fairbeat.scheduling.simulation import CapacityPoint, SimulationResult

# Reasons worth a label whenever they start; any other change gets one only
# this long after the previous label, so the panel stays readable.
ALWAYS_LABELLED = GUARDRAILS | {OPERATOR_PIN}
LABEL_GAP_MIN = 15.0
QUIET = frozenset({HOLD, HOLD_COOLDOWN})


def plot_simulation(result: SimulationResult, path: str) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(13, 11), sharex=True, constrained_layout=True)
    ages, ladder, capacity = axes
    _plot_queue_age(ages, result)
    _plot_ladder(ladder, result)
    _plot_capacity(capacity, result)
    for ax in axes:
        _shade_incidents(ax, result)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    capacity.set_xlabel("simulated time (minutes)")
    capacity.set_xlim(0, result.scenario.minutes)
    fig.suptitle(f"fairbeat simulate: seed {result.scenario.seed}, {result.scenario.minutes} min")
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _minutes(t_s: Sequence[float]) -> list[float]:
    return [t / 60 for t in t_s]


def _plot_queue_age(ax: Axes, result: SimulationResult) -> None:
    hot = {load.workspace_id for load in result.scenario.loads if load.high_quota_enabled}
    for workspace, points in sorted(result.queue_age.items()):
        width, alpha = (2.0, 1.0) if workspace in hot else (0.9, 0.7)
        ax.plot(
            _minutes([t for t, _ in points]),
            [age for _, age in points],
            label=workspace,
            linewidth=width,
            alpha=alpha,
        )
    limit = result.scenario.gate.queue_age_p95_limit_s
    ax.axhline(limit, color="red", linestyle=":", linewidth=1, label="gate p95 limit")
    summary = result.summary
    ax.set_title(
        "Queue age: p95 wait (due to start) of the jobs started each minute"
        f" (whole run: small workspaces {summary['small_p95_wait_s']} s,"
        + "".join(f" {w} {summary['p95_wait_s'][w]} s" for w in sorted(hot))
        + ")"
    )
    ax.set_ylabel("seconds")


def _plot_ladder(ax: Axes, result: SimulationResult) -> None:
    end = result.scenario.minutes * 60
    for workspace in sorted({str(e["workspace"]) for e in result.ladder}):
        entries = [e for e in result.ladder if e["workspace"] == workspace]
        times = [0, *(int(e["t_s"]) for e in entries), end]
        quotas = [entries[0]["from_quota"], *(e["to_quota"] for e in entries)]
        ax.step(_minutes(times), [*quotas, quotas[-1]], where="post", label=workspace)
        for e in entries:
            _label_verdict(ax, e, last=e is entries[-1])
    ax.set_title("Quota ladder: gate verdict each window (takes effect the next tick)")
    ax.set_ylabel("in-flight quota")
    ax.margins(y=0.25)


def _label_verdict(ax: Axes, entry: Mapping[str, Any], *, last: bool) -> None:
    """Moves above the line, holds below it in grey, so neighbours never collide."""
    moved = entry["from_quota"] != entry["to_quota"]
    point = (int(entry["t_s"]) / 60, int(entry["to_quota"]))
    ax.plot(*point, marker="o" if moved else ".", color="black", markersize=4)
    ax.annotate(
        str(entry["reason_code"]),
        point,
        textcoords="offset points",
        xytext=(-3 if last else 3, 5 if moved else -12),
        horizontalalignment="right" if last else "left",  # the last one stays inside the axes
        fontsize=7,
        color="black" if moved else "dimgray",
    )


def _plot_capacity(ax: Axes, result: SimulationResult) -> None:
    points = list(result.capacity)
    end = result.scenario.minutes * 60
    times = [*(t for t, _, _ in points), end]
    values = [*(c for _, c, _ in points), points[-1][1]] if points else []
    ax.step(_minutes(times[: len(values)]), values, where="post", label="global capacity")
    slots = result.scenario.workers * result.scenario.concurrency
    ax.axhline(slots, color="gray", linestyle="--", linewidth=1, label=f"worker slots ({slots})")
    for t, value, reason in _labelled(points):
        ax.annotate(
            reason,
            (t / 60, value),
            textcoords="offset points",
            xytext=(3, 6),
            fontsize=7,
            arrowprops={"arrowstyle": "-", "linewidth": 0.5},
        )
    ax.set_title("Global in-flight capacity (autoscaler decision per tick)")
    ax.set_ylabel("jobs in flight")
    ax.margins(y=0.15)


def _labelled(points: Sequence[CapacityPoint]) -> list[CapacityPoint]:
    """Reason changes worth a label: into and out of a guardrail or pin always, others sparsely.

    Holds never count as a change, so a guardrail stepping down once a cooldown
    for ten minutes is one run with one label.
    """
    out: list[CapacityPoint] = []
    previous = None
    for point in points:
        t, _, reason = point
        if reason in QUIET or reason == previous:
            continue
        notable = reason in ALWAYS_LABELLED or previous in ALWAYS_LABELLED
        if notable or not out or (t - out[-1][0]) / 60 >= LABEL_GAP_MIN:
            out.append(point)
        previous = reason
    return out


def _shade_incidents(ax: Axes, result: SimulationResult) -> None:
    failure = result.scenario.failure_incident
    duplicate = result.scenario.duplicate_incident
    ax.axvspan(failure.start_min, failure.end_min, color="orange", alpha=0.15, label="failures")
    ax.axvspan(
        duplicate.start_min, duplicate.end_min, color="purple", alpha=0.15, label="duplicate sends"
    )
