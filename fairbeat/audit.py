"""The audit trail of operator actions: how commands record them, and
``fairbeat audit``, which reads them."""

from __future__ import annotations

import getpass
import json
import re
import socket
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

console = Console()
err = Console(stderr=True)
Why = Annotated[str, typer.Option("--why", help="Why: kept in the audit trail.")]
Who = Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")]

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def operator_name(who: str | None) -> str:
    return who or f"{getpass.getuser()}@{socket.gethostname()}"


def record(
    conn: Connection,
    at: datetime,
    action: str,
    why: str,
    who: str | None,
    target: str | None = None,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record one action in ``conn``'s transaction (with the change it explains)."""
    from fairbeat.store import operator

    who = operator_name(who)
    operator.record(conn, at=at, who=who, action=action, why=why, target=target, value=value)
    return {"at": at, "who": who, "action": action, "target": target, "value": value, "why": why}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``7d`` ago, or an ISO 8601 time with a zone."""
    if match := _AGO.match(text.strip()):
        return now - timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValueError(
            f"--since {text!r}: give a duration (30m, 2h, 7d) or an ISO 8601 time with a zone, "
            "e.g. 2026-11-22T14:45:00Z"
        )
    return at


def audit_cmd(
    workspace: Annotated[str | None, typer.Option(help="Only actions on this workspace.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only since then: 30m, 2h, 7d or an ISO 8601 time.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Who changed what, when and why: every operator action, newest first."""
    from fairbeat.cli_support import runtime
    from fairbeat.store import operator

    rt = runtime()
    try:
        start = parse_since(since, rt.now()) if since else None
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    with rt.engine.connect() as conn:
        rows = operator.trail(conn, since=start, target=workspace, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps({"actions": rows}, indent=2, default=str) + "\n")
        return
    table = Table("at", "who", "action", "target", "value", "why", title="audit")
    for r in rows:
        value = json.dumps(r["value"], default=str) if r["value"] else ""
        table.add_row(str(r["at"]), r["who"], r["action"], r["target"] or "", value, r["why"])
    console.print(table)
