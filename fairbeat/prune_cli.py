"""``fairbeat prune``: delete finished rows past their retention now.

Maintenance does the same every run; this is for a first clean-up of a large
table, or a shorter retention for once (``--older-than``). Unfinished jobs,
running runs, open alert episodes and the evidence the gate and the health
figures still read are kept whatever the options say.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fairbeat.cli_support import runtime
from fairbeat.scheduling.retention import TABLES, parse_duration


def _older_than(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        Console(stderr=True).print(
            f"[red]error:[/red] --older-than: {exc}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(2) from None


def prune_cmd(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Prune every kind of finished row older than this (0s, 15m, 7d) "
            "instead of its retention setting.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Prune finished jobs, runs, duplicate events, gate decisions, alerts and snapshots."""
    # Imported here: `fairbeat --help` must not load the store and the app.
    from fairbeat.tasks.maintenance import prune as prune_rows

    seconds = _older_than(older_than)
    rt = runtime()
    report = prune_rows(rt, rt.now(), older_than_s=seconds, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    counts = report["would_delete" if report["dry_run"] else "deleted"]
    title = "would prune (dry run)" if report["dry_run"] else "pruned"
    table = Table("rows", "count", "older than", title=title)
    for name in TABLES:
        more = " (more left)" if name in report["more"] else ""
        table.add_row(name, f"{counts[name]}{more}", report["cutoffs"][name])
    console = Console()
    console.print(table)
    console.print(f"kept: everything unfinished, and evidence since {report['evidence_floor']}")
