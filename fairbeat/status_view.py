"""The explaining half of ``fairbeat status``: why workspaces wait, the fleet,
the last runs; as rich renderables, for a one-off print or a live view."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

TOP = 20


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r}={n}" for r, n in reasons.items()) or "-"


def workspaces_table(workspaces: dict[str, Any], top: int = TOP) -> Table:
    """The ``top`` workspaces with most due, then pending; the rest as one row."""
    columns = ("workspace", "pending", "due", "in flight", "quota", "rung", "paused", "waiting")
    table = Table(*columns, title="active workspaces (why due jobs wait, this tick)")
    ranked = sorted(workspaces.items(), key=lambda kv: (-kv[1]["due"], -kv[1]["pending"], kv[0]))
    for name, w in ranked[:top]:
        table.add_row(
            name,
            str(w["pending"]),
            str(w["due"]),
            str(w["in_flight"]),
            "-" if w["quota"] is None else str(w["quota"]),
            "-" if w["rung"] is None else str(w["rung"]),
            "[red]yes[/red]" if w["paused"] else "no",
            _reasons(w["waiting"]),
        )
    rest = [w for _, w in ranked[top:]]
    if rest:
        sums = [str(sum(w[k] for w in rest)) for k in ("pending", "due", "in_flight")]
        table.add_row(f"({len(rest)} more)", *sums, "", "", "", "")
    return table


def explained(data: dict[str, Any], top: int = TOP) -> RenderableType:
    fleet = data["fleet"]
    workers = ", ".join(f"{w['hostname']} ({w['slots']})" for w in fleet["workers"]) or "none"
    runs = Table("run", "status", "window", "finished", title="last runs")
    for name, run in data["last_runs"].items():
        if run is None:
            runs.add_row(name, "never", "", "")
        else:
            runs.add_row(name, run["status"], run["window_key"], str(run["finished_at"] or ""))
    lines = (
        f"waited in the last ticks: {_reasons(data['waited_last_ticks'])}\n"
        f"fleet: {len(fleet['workers'])} live worker(s), {fleet['slots']} slot(s): {workers}; "
        f"queues consumed: {', '.join(fleet['queues']) or 'none'}"
    )
    return Group(workspaces_table(data["workspaces"], top), lines, runs)


def watch(render: Callable[[], RenderableType], interval_s: float, console: Console) -> None:
    """Redraw ``render()`` every ``interval_s`` until Ctrl-C."""
    with Live(render(), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval_s)
                live.update(render(), refresh=True)
        except KeyboardInterrupt:
            pass
