"""Operator controls: capacity, quota ladder, promotion gate. Each change is
recorded in ``operator_action`` with who made it, when and why."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fairbeat.cli_errors import EXIT_FAILURE, CliError
from fairbeat.cli_output import cell, console, rows_table, show
from fairbeat.cli_support import app, emit_json, parse_time, runtime

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Why = Annotated[str, typer.Option("--why", help="Why: kept in the audit trail.")]
Who = Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")]
# ``capacity step -8``: a negative number is the argument, not an unknown option.
NEGATIVE_ARGS = {"ignore_unknown_options": True}

capacity_cli = typer.Typer(no_args_is_help=True, help="Global capacity: show, pin, step.")
ladder_cli = typer.Typer(no_args_is_help=True, help="The quota ladder: show, pin, unpin.")
gate_cli = typer.Typer(
    no_args_is_help=True, help="The promotion gate: run, promotion on|off, reset."
)


def _emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        emit_json(data)
    else:
        show(data, title)


def _audit(
    action: str,
    why: str,
    who: str | None,
    target: str | None = None,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from fairbeat import audit

    rt = runtime()
    with rt.engine.begin() as conn:
        return audit.record(conn, rt.now(), action, why, who, target, value)


def _changed(action: str, why: str, who: str | None, as_json: bool, **audit: Any) -> None:
    _emit(_audit(action, why, who, **audit), as_json, action)


@capacity_cli.command("show")
def capacity_show(as_json: JsonFlag = False) -> None:
    """The capacity now, why, the desired worker count, and any override."""
    control = runtime(schema=False).control
    state = control.autoscale_state()
    data = {
        "capacity": state.get("capacity"),
        "reason_code": state.get("reason"),
        "desired_workers": state.get("desired_workers"),
        "override": control.capacity_override(),
    }
    _emit(data, as_json, "capacity")


@capacity_cli.command("pin")
def capacity_pin(
    capacity: Annotated[int, typer.Argument(min=1)],
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold capacity at CAPACITY until unpinned (OPERATOR_PIN)."""
    runtime().control.set_capacity_override({"pin": capacity})
    _changed("capacity.pin", why, who, as_json, value={"pin": capacity})


@capacity_cli.command("step", context_settings=NEGATIVE_ARGS)
def capacity_step(step: int, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Move capacity once by STEP (negative to lower: ``step -8``), within bounds
    (OPERATOR_STEP)."""
    if step == 0:
        raise CliError("STEP must not be 0: give a positive step to raise, negative to lower")
    runtime().control.set_capacity_override({"step": step})
    _changed("capacity.step", why, who, as_json, value={"step": step})


@capacity_cli.command("unpin")
def capacity_unpin(why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Hand capacity back to the autoscaler."""
    runtime().control.set_capacity_override(None)
    _changed("capacity.unpin", why, who, as_json)


@ladder_cli.command("show")
def ladder_show(as_json: JsonFlag = False) -> None:
    """Each workspace's ladder quota, operator pins, gate state, the promotion switch."""
    control = runtime(schema=False).control
    ladder = control.ladder()
    pins = control.quota_pins()
    states = control.gate_states(sorted(set(ladder) | set(pins)))
    shown = {w: s.to_dict() for w, s in states.items()}
    data = {
        "ladder": ladder,
        "pins": pins,
        "last_window": control.last_window(),
        "promotion_enabled": control.promotion_enabled(),
        "states": shown,
    }
    if as_json:
        emit_json(data)
        return
    rows = {
        w: {"ladder quota": ladder.get(w), "pin": pins.get(w), **shown.get(w, {})}
        for w in sorted(set(ladder) | set(pins))
    }
    console.print(rows_table("quota ladder", "workspace", rows))
    console.print(
        f"last window: {cell(data['last_window'])}; "
        f"promotion {'on' if data['promotion_enabled'] else 'off'}",
        highlight=False,
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
    runtime().control.pin_quota(workspace, quota)
    _changed("ladder.pin", why, who, as_json, target=workspace, value={"quota": quota})


@ladder_cli.command("unpin")
def ladder_unpin(workspace: str, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Give WORKSPACE back to its ladder rung or tier base."""
    runtime().control.pin_quota(workspace, None)
    _changed("ladder.unpin", why, who, as_json, target=workspace)


@gate_cli.command("run")
def gate_run(
    window: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 with a zone; finished and aligned.")
    ] = None,
    *,
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a window now (default: the one that ended last)."""
    from fairbeat.tasks.gate import GateUnavailable, WindowRefused, run_gate

    try:
        start = parse_time(window, "--window") if window else None
    except CliError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None  # as the gate's own refusals
    runtime()  # refuses a database never migrated
    try:
        report = run_gate(app(), start, manual=True)
    except (GateUnavailable, WindowRefused) as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    _audit("gate.run", why, who, value={"window": window or "last"})
    _emit(report, as_json, "gate")


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
    from fairbeat.tasks.gate import GateUnavailable, reset_state

    try:
        result = reset_state(runtime(), workspace)
    except GateUnavailable as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    _changed("gate.reset", why, who, as_json, target=workspace, value=result)


@gate_cli.command("promotion")
def gate_promotion(
    state: Annotated[str, typer.Argument(help="on or off")],
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn promotion on or off (demotions still happen). A rollback switch."""
    if state.lower() not in ("on", "off"):
        raise CliError(f"STATE must be on or off, got {state!r}")
    enabled = state.lower() == "on"
    runtime().control.set_promotion(enabled)
    _changed("gate.promotion", why, who, as_json, value={"enabled": enabled})
