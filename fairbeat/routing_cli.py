"""``fairbeat routing``: where each kind goes, who consumes each queue, and the
operator's routes, which the dispatcher reads on every tick that sends claims."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fairbeat import audit
from fairbeat.cli_support import runtime

console = Console()
err = Console(stderr=True)
routing_cli = typer.Typer(no_args_is_help=True, help="Routing: show, set, unset.")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Kinds = Annotated[
    list[str] | None, typer.Option("--kind", help="Also show where this kind goes (repeatable).")
]


def _view(rt: Any, extra_kinds: list[str]) -> dict[str, Any]:
    from fairbeat.scheduling.routing import routing_view
    from fairbeat.store import job_queries

    with rt.engine.connect() as conn:
        kinds = job_queries.live_kinds(conn)
    consumers: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for worker in rt.live.worker_slots():
        for queue in worker.queues:
            consumers[queue].append((worker.hostname, worker.slots))
    settings = rt.settings
    return routing_view(
        [*kinds, *extra_kinds],
        rt.control.route_overrides(),
        settings.routes,
        settings.default_queue,
        consumers,
    )


@routing_cli.command("show")
def routing_show(kind: Kinds = None, as_json: JsonFlag = False) -> None:
    """The rules (operator's first), where each live kind goes, each queue's workers."""
    view = _view(runtime(), kind or [])
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
        return
    rules = Table("pattern", "queue", "source", title="rules (first match wins)")
    for rule in view["rules"]:
        rules.add_row(rule["pattern"], rule["queue"], rule["source"])
    rules.add_row("*", view["default_queue"], "DEFAULT_QUEUE")
    queues = Table("queue", "kinds", "workers (slots)", title="queues")
    for name, q in view["queues"].items():
        workers = ", ".join(f"{w['worker']} ({w['slots']})" for w in q["workers"])
        queues.add_row(name, ", ".join(q["kinds"]), workers or "[red]none[/red]")
    console.print(rules, queues)


def _change(pattern: str, queue: str | None, why: str, who: str | None) -> dict[str, Any]:
    rt = runtime()
    if not pattern.strip():
        raise _fail("PATTERN: give a kind or a glob, e.g. report.*")
    if queue is not None and queue == rt.settings.control_queue:
        raise _fail(f"QUEUE {queue!r} is the control queue; route jobs to a job queue")
    rules = rt.control.set_route_override(pattern, queue)
    with rt.engine.begin() as conn:
        action = "routing.set" if queue else "routing.unset"
        value = {"pattern": pattern, "queue": queue}
        entry = audit.record(conn, rt.now(), action, why, who, value=value)
    consumed = {q for w in rt.live.worker_slots() for q in w.queues}
    if queue and queue not in consumed:
        err.print(f"warning: no live worker consumes {queue!r}; start one with -Q {queue}")
    return {**entry, "operator_rules": rules}


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


@routing_cli.command("set")
def routing_set(
    pattern: Annotated[str, typer.Argument(help="A kind or a glob: report.*")],
    queue: Annotated[str, typer.Argument(help="The job queue its new claims go to.")],
    why: audit.Why,
    who: audit.Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Send new claims of kinds matching PATTERN to QUEUE, before FAIRBEAT_ROUTES."""
    _print(_change(pattern, queue, why, who), as_json)


@routing_cli.command("unset")
def routing_unset(
    pattern: str, why: audit.Why, who: audit.Who = None, as_json: JsonFlag = False
) -> None:
    """Drop the operator's route for PATTERN (FAIRBEAT_ROUTES applies again)."""
    _print(_change(pattern, None, why, who), as_json)


def _print(entry: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(entry, indent=2, default=str) + "\n")
    else:
        console.print(
            f"{entry['action']} {entry['value']}: operator routes {entry['operator_rules']}"
        )
