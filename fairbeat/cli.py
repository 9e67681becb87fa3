"""The ``fairbeat`` command line. ``--json`` on every command that reports.

Commands import what they use inside themselves: ``fairbeat --help`` loads no
Celery, SQLAlchemy or Redis. Every failure is reported by ``fairbeat.cli_errors``
as one line; ``--debug`` (or ``FAIRBEAT_DEBUG=1``) shows the traceback too.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from fairbeat import audit, cli_errors, cli_jobs, controls
from fairbeat.cli_errors import EXIT_FAILURE, EXIT_TEMPFAIL, CliError
from fairbeat.cli_output import console, show
from fairbeat.cli_support import app, check_imports, emit_json, runtime
from fairbeat.prune_cli import prune_cmd
from fairbeat.routing_cli import routing_cli
from fairbeat.schedule_cli import schedule_cli

if TYPE_CHECKING:
    from fairbeat.tasks.api import Enqueued, OnConflict

cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@cli.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the traceback (FAIRBEAT_DEBUG=1).")
    ] = False,
) -> None:
    cli_errors.Debug.enabled = debug


@cli.command("migrate")
def migrate_cmd(as_json: JsonFlag = False) -> None:
    """Create or upgrade the database schema to the newest migration."""
    from fairbeat.store import migrate

    engine = runtime(schema=False).engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    if as_json:
        emit_json({"from": before, "to": after})
    else:
        console.print(f"schema at revision {after} (was {before or 'empty'})")


def _payload(payload: str) -> object:
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise CliError("--payload is nested too deeply for JSON decoding") from None


@cli.command("enqueue")
def enqueue_cmd(
    workspace: Annotated[str | None, typer.Argument()] = None,
    kind: Annotated[str | None, typer.Argument()] = None,
    payload: Annotated[str, typer.Option(help="The job's arguments, a JSON object.")] = "{}",
    dedupe_key: Annotated[str | None, typer.Option(help="One job per key per workspace.")] = None,
    run_at: Annotated[str | None, typer.Option(help="ISO 8601 time with a zone.")] = None,
    priority: int = 0,
    priority_class: Annotated[
        str, typer.Option(help="Across workspaces: a class of FAIRBEAT_PRIORITY_CLASSES.")
    ] = "default",
    max_attempts: int | None = None,
    concurrency_key: Annotated[
        list[str] | None, typer.Option(help="A concurrency key; repeat for several.")
    ] = None,
    concurrency_limit: Annotated[
        int | None, typer.Option(help="Jobs of each key in flight at once.")
    ] = None,
    on_conflict: Annotated[
        str, typer.Option(help="With --dedupe-key: keep, replace_pending or debounce.")
    ] = "keep",
    debounce_s: Annotated[float | None, typer.Option(help="The debounce window.")] = None,
    from_file: Annotated[
        Path | None, typer.Option(help="A JSON Lines file of jobs, all enqueued or none.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a job for WORKSPACE running the task KIND (or every job of --from-file)."""
    from datetime import datetime

    if from_file is not None or workspace is None or kind is None:
        from fairbeat.bulk_cli import enqueue_file

        enqueue_file(from_file, workspace, kind, as_json)
        return

    from fairbeat.tasks.api import enqueue
    from fairbeat.tasks.errors import WorkspaceBacklogFull

    body = _payload(payload)
    try:
        when = datetime.fromisoformat(run_at) if run_at else None
    except ValueError as exc:
        raise CliError(f"--run-at is not an ISO 8601 time: {exc}") from None
    check_imports(runtime().settings.imports)
    try:
        job = enqueue(
            workspace,
            kind,
            body,  # type: ignore[arg-type]  # enqueue refuses a non-object, naming it
            dedupe_key=dedupe_key,
            run_at=when,
            priority=priority,
            priority_class=priority_class,
            max_attempts=max_attempts,
            concurrency_keys=concurrency_key,
            concurrency_limit=concurrency_limit,
            on_conflict=cast("OnConflict", on_conflict),  # enqueue refuses any other value
            debounce_s=debounce_s,
        )
    except WorkspaceBacklogFull as exc:
        if as_json:
            emit_json({"error": str(exc), "retry_after_s": exc.retry_after_s})
        raise CliError(str(exc), EXIT_TEMPFAIL) from None
    _print_enqueued(job, as_json)


def _print_enqueued(job: Enqueued, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "job_id": job.job_id,
                "created": job.created,
                "replaced": job.replaced,
                "run_at": job.run_at.isoformat(),
            }
        )
        return
    verb = "enqueued" if job.created else "already enqueued (same dedupe key)"
    if job.replaced:
        verb = f"replaced (same dedupe key), runs at {job.run_at.isoformat()}"
    console.print(f"job {job.job_id} {verb} for {job.workspace_id}: {job.kind}")


@cli.command("status")
def status_cmd(
    top: Annotated[
        int, typer.Option(min=1, help="Workspaces shown; the rest summed as one line.")
    ] = 10,
    as_json: JsonFlag = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh live until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="--watch: seconds between.")] = 2.0,
) -> None:
    """Health, and why: jobs of the busiest workspaces, due backlog, queue age,
    stale work; each active workspace's quota, rung, pause and waiting reasons;
    the fleet; the last dispatch, gate and maintenance runs.

    Counts every live job (pending, claimed, running) and the jobs finished
    within the health window (FAIRBEAT_HEALTH_WINDOW_S).
    """
    from fairbeat import status_view
    from fairbeat.cli_status import show_status
    from fairbeat.tasks.explain import explain
    from fairbeat.tasks.health import status_report

    rt = runtime()
    if watch:
        status_view.watch(lambda: _status_renderable(rt, top), interval, console)
        return
    now = rt.now()
    report = status_report(rt, now, top)
    if as_json:
        emit_json({**report, "explain": explain(app(), now)})
    else:
        show_status(report)
        console.print(status_view.explained(explain(app(), now), top))


def _status_renderable(rt: Any, top: int) -> Any:
    from rich.console import Group

    from fairbeat import status_view
    from fairbeat.cli_status import status_tables
    from fairbeat.tasks.explain import explain
    from fairbeat.tasks.health import status_report

    now = rt.now()
    report = status_report(rt, now, top)
    return Group(*status_tables(report), status_view.explained(explain(app(), now), top))


maintenance_cli = typer.Typer(no_args_is_help=True, help="Recovery, health snapshot, alerts.")
cli.add_typer(maintenance_cli, name="maintenance")
cli.command("prune")(prune_cmd)


@maintenance_cli.command("run")
def maintenance_run(as_json: JsonFlag = False) -> None:
    """Run maintenance now (beat runs it every FAIRBEAT_MAINTENANCE_INTERVAL_S)."""
    from fairbeat.tasks.maintenance import run_maintenance

    rt = runtime()
    report = run_maintenance(app(), window_key=f"manual:{rt.now().isoformat()}")
    if as_json:
        emit_json(report)
    else:
        show(report, "maintenance")


@cli.command("alerts")
def alerts_cmd(
    limit: Annotated[int, typer.Option(min=1, help="How many episodes.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Alert episodes, newest first: fired, and resolved or still open."""
    from rich.table import Table

    from fairbeat.store import alerts

    with runtime().engine.connect() as conn:
        episodes = alerts.history(conn, limit)
    if as_json:
        emit_json({"alerts": episodes})
        return
    table = Table("kind", "episode", "fired", "resolved", title="alerts")
    for e in episodes:
        table.add_row(e["kind"], e["episode"], str(e["fired_at"]), str(e["resolved_at"] or "open"))
    console.print(table)


@cli.command("up")
def up_cmd(
    demo: Annotated[bool, typer.Option(help="Enqueue a demo load and watch it finish.")] = False,
    loglevel: Annotated[str, typer.Option(help="Celery log level of the children.")] = "warning",
    flower_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Flower on 127.0.0.1 at this port; 0: none.")
    ] = 5555,
    log_dir: Annotated[
        Path | None, typer.Option(help="Where the children's logs go (default: a new folder).")
    ] = None,
) -> None:
    """Run beat, a worker and Flower on this machine; Ctrl-C stops everything."""
    from fairbeat.embedded import run_up

    raise typer.Exit(run_up(demo=demo, loglevel=loglevel, flower_port=flower_port, log_dir=log_dir))


cli.add_typer(cli_jobs.jobs_cli, name="jobs")
cli.add_typer(cli_jobs.workspace_cli, name="workspace")


@cli.command("exporter")
def exporter_cmd(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for /metrics.")] = 9808,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics at http://ADDRESS:PORT/metrics until Ctrl-C."""
    from prometheus_client import CollectorRegistry, start_http_server

    from fairbeat.exporter import FairbeatCollector

    registry = CollectorRegistry()
    registry.register(FairbeatCollector(runtime()))
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise CliError(
            f"--port {port} is already in use on {address}: stop what holds it, "
            "or pass another --port",
            EXIT_FAILURE,
        ) from None
    console.print(f"serving fairbeat metrics at http://{address}:{port}/metrics")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


cli.add_typer(controls.capacity_cli, name="capacity")
cli.add_typer(controls.ladder_cli, name="ladder")
cli.add_typer(controls.gate_cli, name="gate")
cli.add_typer(schedule_cli, name="schedule")
cli.command("audit")(audit.audit_cmd)
cli.add_typer(routing_cli, name="routing")


@cli.command("canary")
def canary_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the go/no-go packet.")],
    workspaces: Annotated[int, typer.Option(min=1, help="Workspaces in the burst.")] = 10,
    jobs: Annotated[int, typer.Option(min=1, help="Jobs per small workspace.")] = 20,
    hot: Annotated[int, typer.Option(min=0, help="Hot workspaces (10x the jobs).")] = 1,
    deadline_s: Annotated[float, typer.Option(min=1, help="Give up waiting after.")] = 900,
    as_json: JsonFlag = False,
) -> None:
    """Run a real burst against the running deployment; write the go/no-go packet.

    Exits 0 on GO, 1 on NO_GO.
    """
    from fairbeat.canary import CanaryPlan, run_canary

    if hot > workspaces:
        raise CliError("--hot cannot exceed --workspaces")
    plan = CanaryPlan(workspaces=workspaces, jobs=jobs, hot=hot, deadline_s=deadline_s)
    runtime()
    result, report = run_canary(app(), plan, out)
    if as_json:
        emit_json({k: v for k, v in report.items() if k != "samples"})
    else:
        for check in result.checks:
            mark = "pass" if check.passed else "[red]FAIL[/red]"
            console.print(f"{check.name}: {check.measured} (limit {check.limit}) {mark}")
        console.print(f"[b]{result.decision}[/b]; packet in {out}")
    raise typer.Exit(0 if result.decision == "GO" else 1)


@cli.command("simulate")
def simulate_cmd(
    minutes: Annotated[int, typer.Option(min=15, help="Simulated minutes.")] = 120,
    seed: Annotated[int, typer.Option(help="Same seed, same result.")] = 7,
    plot: Annotated[str | None, typer.Option(help="Write a PNG of the run here.")] = None,
    fairness: Annotated[
        bool,
        typer.Option(
            "--fairness",
            help="Compare fairness by count and by time: 3 backlogged workspaces, 5/20/80 ms jobs.",
        ),
    ] = False,
    priority: Annotated[
        bool,
        typer.Option(
            "--priority",
            help="Compare priority-class policies: bursts of critical jobs under a bulk flood.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Drive the real scheduling policies over a synthetic workload (deterministic)."""
    from fairbeat.scheduling.simulation import Scenario, simulate

    if fairness:
        _simulate_fairness(plot, as_json)
        return
    if priority:
        _simulate_priority(as_json)
        return

    result = simulate(Scenario(minutes=minutes, seed=seed))
    if plot:
        from fairbeat.plot import plot_simulation

        plot_simulation(result, plot)
    data = result.to_dict()
    if as_json:
        emit_json(data)
        return
    show(data["summary"], f"simulation: {minutes} min, seed {seed}")
    if plot:
        console.print(f"plot written to {plot}")


def _simulate_fairness(plot: str | None, as_json: bool) -> None:
    from fairbeat.scheduling.fairsim import CostScenario, compare

    scenario = CostScenario({"ws-05ms": 0.005, "ws-20ms": 0.02, "ws-80ms": 0.08})
    results = compare(scenario)
    data = {
        mode: {"time_jain": r.time_jain, "count_jain": r.count_jain, "worker_s": r.worker_s}
        for mode, r in results.items()
    }
    if plot:
        from fairbeat.fairness_plot import plot_fairness

        plot_fairness(scenario, results, plot)
    if as_json:
        emit_json(data)
        return
    console.print(data)
    if plot:
        console.print(f"plot written to {plot}")


def _simulate_priority(as_json: bool) -> None:
    from fairbeat.scheduling.classsim import ClassScenario, compare_classes

    results = compare_classes(ClassScenario())
    data = {
        policy: {"starts": r.starts, "p95_wait_s": r.p95_wait_s, "max_wait_s": r.max_wait_s}
        for policy, r in results.items()
    }
    if as_json:
        emit_json(data)
        return
    from rich.table import Table

    table = Table("policy", "class", "starts", "p95 wait s", "max wait s", title="priority classes")
    for policy, r in results.items():
        for name in r.starts:
            row = (r.starts[name], r.p95_wait_s[name], r.max_wait_s[name])
            table.add_row(policy, name, *map(str, row))
    console.print(table)


def main() -> None:
    cli_errors.run_typer(cli)
