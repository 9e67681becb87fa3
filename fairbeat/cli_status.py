"""The human view of ``fairbeat status``: the busiest workspaces, the rest as
one line, then the health figures."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from fairbeat.cli_output import cell, console

LIVE = ("WAITING", "PENDING", "CLAIMED", "RUNNING")  # as fairbeat.store.overview.LIVE
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
HEALTH_ROWS = (
    "due_pending",
    "oldest_due_age_s",
    "queue_age_p95_s",
    "running",
    "in_flight",
    "stale_runs",
    "stale_locks",
    "failure_rate",
    "duplicate_signal",
    "top_workspace",
    "top_workspace_share",
)


def _row(counts: dict[str, int]) -> list[str]:
    return [str(counts.get(s, 0)) for s in (*LIVE, *FINISHED)]


def jobs_table(report: dict[str, Any]) -> Table:
    window = f"{report['window_s']:g} s"
    columns = [s.lower() for s in LIVE] + [f"{s.lower()}\n(last {window})" for s in FINISHED]
    table = Table("workspace", *columns, title="jobs of the active workspaces")
    for workspace, counts in report["workspaces"].items():
        table.add_row(workspace, *_row(counts))
    others = report["other_workspaces"]
    if others["count"]:
        table.add_row(f"[i]{others['count']} more[/i]", *_row(others["by_status"]))
    table.add_row("[b]all[/b]", *_row(report["by_status"]))
    return table


def status_tables(report: dict[str, Any]) -> list[Table]:
    health = Table("figure", "value", title=f"health (last {report['window_s']:g} s)")
    for key in HEALTH_ROWS:
        health.add_row(key, cell(report[key]))
    return [jobs_table(report), health]


def show_status(report: dict[str, Any]) -> None:
    for table in status_tables(report):
        console.print(table)
