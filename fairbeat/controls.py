"""Operator controls: capacity, quota ladder, promotion gate. Each change is
recorded in ``operator_action`` with who made it, when and why."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from fairbeat.store import operator
from fairbeat.tasks.application import default_app
from fairbeat.tasks.gate import GateUnavailable, WindowRefused, reset_state, run_gate
from fairbeat.tasks.runtime import runtime_of

console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Why = Annotated[str, typer.Option("--why", help="Why: kept in the audit trail.")]
Who = Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")]

capacity_cli = typer.Typer(no_args_is_help=True, help="Global capacity: show, pin, step.")
ladder_cli = typer.Typer(no_args_is_help=True, help="The quota ladder: show, pin, unpin.")
gate_cli = typer.Typer(
    no_args_is_help=True, help="The promotion gate: run, promotion on|off, reset."
)


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        console.print(data)


def _audit(
    action: str,
    why: str,
    who: str | None,
    target: str | None = None,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rt = runtime_of(default_app())
    at, who = rt.now(), who or f"{getpass.getuser()}@{socket.gethostname()}"
    with rt.engine.begin() as conn:
        operator.record(conn, at=at, who=who, action=action, why=why, target=target, value=value)
    return {"at": at, "who": who, "action": action, "target": target, "value": value, "why": why}


@capacity_cli.command("show")
def capacity_show(as_json: JsonFlag = False) -> None:
    """The capacity now, why, the desired worker count, and any override."""
    control = runtime_of(default_app()).control
    state = control.autoscale_state()
    _emit(
        {
            "capacity": state.get("capacity"),
            "reason_code": state.get("reason"),
            "desired_workers": state.get("desired_workers"),
            "override": control.capacity_override(),
        },
        as_json,
    )


@capacity_cli.command("pin")
def capacity_pin(
    capacity: Annotated[int, typer.Argument(min=1)],
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold capacity at CAPACITY until unpinned (OPERATOR_PIN)."""
    runtime_of(default_app()).control.set_capacity_override({"pin": capacity})
    _emit(_audit("capacity.pin", why, who, value={"pin": capacity}), as_json)


@capacity_cli.command("step")
def capacity_step(step: int, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Move capacity once by STEP (negative to lower), within bounds (OPERATOR_STEP)."""
    runtime_of(default_app()).control.set_capacity_override({"step": step})
    _emit(_audit("capacity.step", why, who, value={"step": step}), as_json)


@capacity_cli.command("unpin")
def capacity_unpin(why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Hand capacity back to the autoscaler."""
    runtime_of(default_app()).control.set_capacity_override(None)
    _emit(_audit("capacity.unpin", why, who), as_json)


@ladder_cli.command("show")
def ladder_show(as_json: JsonFlag = False) -> None:
    """Each workspace's ladder quota, operator pins, gate state, the promotion switch."""
    control = runtime_of(default_app()).control
    ladder = control.ladder()
    pins = control.quota_pins()
    states = control.gate_states(sorted(set(ladder) | set(pins)))
    _emit(
        {
            "ladder": ladder,
            "pins": pins,
            "last_window": control.last_window(),
            "promotion_enabled": control.promotion_enabled(),
            "states": {w: s.to_dict() for w, s in states.items()},
        },
        as_json,
    )


@ladder_cli.command("pin")
def ladder_pin(
    workspace: str,
    quota: Annotated[int, typer.Argument(min=0)],
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold WORKSPACE's quota at QUOTA, over the ladder and its tier."""
    runtime_of(default_app()).control.pin_quota(workspace, quota)
    _emit(_audit("ladder.pin", why, who, workspace, {"quota": quota}), as_json)


@ladder_cli.command("unpin")
def ladder_unpin(workspace: str, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Give WORKSPACE back to its ladder rung or tier base."""
    runtime_of(default_app()).control.pin_quota(workspace, None)
    _emit(_audit("ladder.unpin", why, who, workspace), as_json)


@gate_cli.command("run")
def gate_run(
    window: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 with a zone; finished and aligned.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a window now (default: the one that ended last)."""
    try:
        start = _window_start(window) if window else None
        report = run_gate(default_app(), start, manual=True)
    except (GateUnavailable, WindowRefused) as exc:
        _error(str(exc))
    _emit(report, as_json)


def _window_start(window: str) -> datetime:
    try:
        start = datetime.fromisoformat(window)
    except ValueError:
        _error(f"--window {window!r}: not an ISO 8601 time, e.g. 2026-11-22T14:45:00Z")
    if start.tzinfo is None:
        _error(f"--window {window!r}: give it a timezone, e.g. 2026-11-22T14:45:00Z")
    return start


def _error(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@gate_cli.command("reset")
def gate_reset(
    why: Why,
    workspace: Annotated[
        str | None, typer.Argument(help="Only this workspace (default: every one).")
    ] = None,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Repair gate state: clear streaks and last-evaluated windows (rungs kept)."""
    try:
        result = reset_state(runtime_of(default_app()), workspace)
    except GateUnavailable as exc:
        _error(str(exc))
    _emit(_audit("gate.reset", why, who, workspace, result), as_json)


@gate_cli.command("promotion")
def gate_promotion(
    state: Annotated[str, typer.Argument(help="on or off")],
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn promotion on or off (demotions still happen). A rollback switch."""
    if state not in ("on", "off"):
        raise typer.BadParameter("on or off")
    runtime_of(default_app()).control.set_promotion(state == "on")
    _emit(_audit("gate.promotion", why, who, value={"enabled": state == "on"}), as_json)
