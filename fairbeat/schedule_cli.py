"""``fairbeat schedule``: per-workspace recurring jobs, added and managed at run time."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fairbeat.scheduling.schedules import MISSED_POLICIES
from fairbeat.tasks.errors import EnqueueError

if TYPE_CHECKING:
    from fairbeat.store.schedules import ScheduleRow
    from fairbeat.tasks.schedules import BadSchedule

console = Console()
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ScheduleId = Annotated[int, typer.Argument(help="The schedule's id (fairbeat schedule list).")]

schedule_cli = typer.Typer(
    no_args_is_help=True, help="Per-workspace recurring jobs: add, list, pause, resume, remove."
)

# The API's argument names as this command spells them, for error messages.
FLAGS = {
    "workspace_id": "WORKSPACE",
    "kind": "KIND",
    "payload": "--payload",
    "cron": "--cron",
    "every_s": "--every",
    "timezone": "--timezone",
    "missed": "--missed",
    "schedule_id": "ID",
}


def _schedules() -> ModuleType:
    # Imported on use: `fairbeat --help` must not load the store and the app.
    from fairbeat.tasks import schedules

    return schedules


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _refused(exc: EnqueueError | BadSchedule) -> typer.Exit:
    flag = FLAGS.get(exc.field, exc.field)
    return _fail(f"{flag}: {str(exc).removeprefix(exc.field + ': ')}")


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _shown(row: ScheduleRow) -> dict[str, Any]:
    data = row.to_dict()
    for name in ("next_slot", "last_slot", "created_at"):
        data[name] = None if data[name] is None else data[name].isoformat()
    return data


def _show(row: ScheduleRow, as_json: bool, verb: str) -> None:
    if as_json:
        _emit(_shown(row))
        return
    rule = row.cron if row.cron is not None else f"every {row.every_s} s"
    state = "paused" if row.paused else f"next {row.next_slot}"
    console.print(f"schedule {row.id} {verb}: {row.workspace_id} {row.kind} ({rule}), {state}")


@schedule_cli.command("add")
def schedule_add(
    workspace: str,
    kind: str,
    cron: Annotated[
        str | None, typer.Option(help="Cron expression, e.g. '0 6 * * *' (in --timezone).")
    ] = None,
    every: Annotated[int | None, typer.Option(help="Or: every this many seconds.")] = None,
    payload: Annotated[str, typer.Option(help="The job's arguments, a JSON object.")] = "{}",
    timezone: Annotated[str, typer.Option(help="IANA zone the cron is read in.")] = "UTC",
    missed: Annotated[
        str | None,
        typer.Option(help=f"{' or '.join(MISSED_POLICIES)} (default FAIRBEAT_SCHEDULE_MISSED)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Enqueue KIND for WORKSPACE on a cron expression (--cron) or an interval (--every)."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise _fail(f"--payload is not valid JSON: {exc}") from None
    if (cron is None) == (every is None):
        raise _fail("give exactly one of --cron EXPR and --every SECONDS")
    try:
        row = _schedules().add(
            workspace,
            kind,
            body,
            cron=cron,
            every_s=every,
            timezone=timezone,
            missed=missed,
            who=f"{getpass.getuser()}@{socket.gethostname()}",
        )
    except (EnqueueError, _schedules().BadSchedule) as exc:
        raise _refused(exc) from None
    _show(row, as_json, "added")


@schedule_cli.command("list")
def schedule_list(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every schedule (or one workspace's): its rule, state, next and last slot."""
    rows = _schedules().listing(workspace)
    if as_json:
        _emit({"schedules": [_shown(r) for r in rows]})
        return
    table = Table("id", "workspace", "kind", "rule", "zone", "missed", "state", "next", "last")
    for r in rows:
        rule = r.cron if r.cron is not None else f"every {r.every_s} s"
        state = "paused" if r.paused else ("error" if r.last_error else "active")
        cells = (r.workspace_id, r.kind, rule, r.timezone, r.missed, state)
        table.add_row(str(r.id), *cells, str(r.next_slot), str(r.last_slot or "-"))
    console.print(table)


def _change(schedule_id: int, as_json: bool, verb: str) -> None:
    action = {"paused": _schedules().pause, "resumed": _schedules().resume}[verb]
    try:
        row = action(schedule_id)
    except _schedules().BadSchedule as exc:
        raise _refused(exc) from None
    _show(row, as_json, verb)


@schedule_cli.command("pause")
def schedule_pause(schedule_id: ScheduleId, as_json: JsonFlag = False) -> None:
    """Stop enqueueing; slots passing meanwhile are missed (see --missed)."""
    _change(schedule_id, as_json, "paused")


@schedule_cli.command("resume")
def schedule_resume(schedule_id: ScheduleId, as_json: JsonFlag = False) -> None:
    """Enqueue again; slots missed while paused follow the schedule's missed policy."""
    _change(schedule_id, as_json, "resumed")


@schedule_cli.command("remove")
def schedule_remove(schedule_id: ScheduleId, as_json: JsonFlag = False) -> None:
    """Delete a schedule; the jobs it already enqueued stay."""
    try:
        _schedules().remove(schedule_id)
    except _schedules().BadSchedule as exc:
        raise _refused(exc) from None
    if as_json:
        _emit({"removed": schedule_id})
    else:
        console.print(f"schedule {schedule_id} removed")
