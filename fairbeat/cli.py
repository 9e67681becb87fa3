"""The ``fairbeat`` command line. ``--json`` on every command that reports."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from fairbeat import controls
from fairbeat.embedded import run_up
from fairbeat.prune_cli import prune_cmd
from fairbeat.schedule_cli import schedule_cli
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.scheduling.limits import rate_limit_problem, weight_problem
from fairbeat.store import alerts, job_queries, migrate, workspaces
from fairbeat.store.selection import WorkspaceProfile
from fairbeat.tasks.api import enqueue as enqueue_job
from fairbeat.tasks.application import default_app
from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull
from fairbeat.tasks.health import snapshot as health_snapshot
from fairbeat.tasks.kick import kick
from fairbeat.tasks.maintenance import run_maintenance
from fairbeat.tasks.redact import mask_url, mask_urls
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.settings import SettingsError
from fairbeat.up import UpError

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
err = Console(stderr=True)

# sysexits' EX_TEMPFAIL: the request was fine, try again later.
EXIT_TEMPFAIL = 75

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@cli.command("migrate")
def migrate_cmd(as_json: JsonFlag = False) -> None:
    """Create or upgrade the database schema to the newest migration."""
    engine = runtime_of(default_app()).engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    if as_json:
        _emit({"from": before, "to": after})
    else:
        console.print(f"schema at revision {after} (was {before or 'empty'})")


@cli.command("enqueue")
def enqueue_cmd(
    workspace: str,
    kind: str,
    payload: Annotated[str, typer.Option(help="The job's arguments, a JSON object.")] = "{}",
    dedupe_key: Annotated[str | None, typer.Option(help="One job per key per workspace.")] = None,
    run_at: Annotated[str | None, typer.Option(help="ISO 8601 time with a zone.")] = None,
    priority: int = 0,
    max_attempts: int | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a job for WORKSPACE running the task KIND."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise _fail(f"--payload is not valid JSON: {exc}") from None
    try:
        when = datetime.fromisoformat(run_at) if run_at else None
    except ValueError as exc:
        raise _fail(f"--run-at is not an ISO 8601 time: {exc}") from None
    try:
        job = enqueue_job(
            workspace,
            kind,
            body,
            dedupe_key=dedupe_key,
            run_at=when,
            priority=priority,
            max_attempts=max_attempts,
        )
    except WorkspaceBacklogFull as exc:
        if as_json:
            _emit({"error": str(exc), "retry_after_s": exc.retry_after_s})
        raise _fail(str(exc), code=EXIT_TEMPFAIL) from None
    except EnqueueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _emit({"job_id": job.job_id, "created": job.created, "run_at": job.run_at.isoformat()})
    else:
        verb = "enqueued" if job.created else "already enqueued (same dedupe key)"
        console.print(f"job {job.job_id} {verb} for {job.workspace_id}: {job.kind}")


@cli.command("status")
def status_cmd(as_json: JsonFlag = False) -> None:
    """Health: counts by status and workspace, due backlog, queue age, stale work."""
    rt = runtime_of(default_app())
    snap = health_snapshot(rt, rt.now())
    if as_json:
        _emit(snap)
        return
    table = Table("workspace", *[s.value.lower() for s in JobStatus], title="jobs")
    for workspace, counts in sorted(snap["workspaces"].items()):
        table.add_row(workspace, *[str(counts.get(s.value, 0)) for s in JobStatus])
    table.add_row("[b]all[/b]", *[str(snap["by_status"][s.value]) for s in JobStatus])
    console.print(table)
    health = Table("figure", "value", title=f"health (last {snap['window_s']:g} s)")
    for key in HEALTH_ROWS:
        health.add_row(key, "-" if snap[key] is None else str(snap[key]))
    console.print(health)


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


maintenance_cli = typer.Typer(no_args_is_help=True, help="Recovery, health snapshot, alerts.")
cli.add_typer(maintenance_cli, name="maintenance")
cli.command("prune")(prune_cmd)


@maintenance_cli.command("run")
def maintenance_run(as_json: JsonFlag = False) -> None:
    """Run maintenance now (beat runs it every FAIRBEAT_MAINTENANCE_INTERVAL_S)."""
    app = default_app()
    report = run_maintenance(app, window_key=f"manual:{runtime_of(app).now().isoformat()}")
    if as_json:
        _emit(report)
    else:
        console.print(report)


@cli.command("alerts")
def alerts_cmd(
    limit: Annotated[int, typer.Option(min=1, help="How many episodes.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Alert episodes, newest first: fired, and resolved or still open."""
    with runtime_of(default_app()).engine.connect() as conn:
        episodes = alerts.history(conn, limit)
    if as_json:
        _emit({"alerts": episodes})
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
) -> None:
    """Run beat, a worker and Flower on this machine; Ctrl-C stops everything."""
    try:
        code = run_up(demo=demo, loglevel=loglevel, flower_port=flower_port)
    except UpError as exc:
        raise _fail(str(exc), code=1) from None
    raise typer.Exit(code)


jobs_cli = typer.Typer(no_args_is_help=True, help="List, retry and cancel jobs.")
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="PENDING, FAILED, ...")] = None,
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest jobs, optionally of one status and workspace (dead letters: --status FAILED)."""
    if status and status not in {s.value for s in JobStatus}:
        raise _fail(f"unknown status {status!r}; one of {', '.join(s.value for s in JobStatus)}")
    with runtime_of(default_app()).engine.connect() as conn:
        rows = job_queries.list_jobs(conn, status=status, workspace_id=workspace, limit=limit)
    if as_json:
        _emit({"jobs": rows})
        return
    table = Table("id", "workspace", "kind", "status", "attempts", "last error", title="jobs")
    for r in rows:
        error = (r["last_error"] or "").strip().splitlines()[-1:] or [""]
        table.add_row(
            str(r["id"]),
            r["workspace_id"],
            r["kind"],
            r["status"],
            f"{r['attempts']}/{r['max_attempts']}",
            error[0][:60],
        )
    console.print(table)


@jobs_cli.command("retry")
def jobs_retry(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Dead-lettered job ids.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every dead letter.")] = False,
    workspace: Annotated[str | None, typer.Option(help="With --all-failed: one workspace.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run dead-lettered (FAILED) jobs again, with fresh attempts."""
    if not job_ids and not all_failed:
        raise _fail("name job ids, or pass --all-failed")
    rt = runtime_of(default_app())
    with rt.engine.begin() as conn:
        retried = job_queries.retry_dead(conn, rt.now(), None if all_failed else job_ids, workspace)
    if retried:
        kick(default_app(), "operator retry")
    if as_json:
        _emit({"retried": retried})
    else:
        console.print(f"{len(retried)} job(s) back to PENDING: {retried[:20]}")


@jobs_cli.command("cancel")
def jobs_cancel(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Job ids.")] = None,
    why: Annotated[str | None, typer.Option("--why", help="Why: kept with each job.")] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Instead of ids: this workspace's whole backlog.")
    ] = None,
    status: Annotated[
        str, typer.Option(help="With --workspace: the statuses to cancel, comma-separated.")
    ] = "pending,claimed,running",
    who: Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel jobs, running ones too: a running handler sees job_context().cancelled,
    and is terminated after FAIRBEAT_CANCEL_GRACE_S."""
    from fairbeat.tasks import cancellation  # only this command needs it

    if not why or not why.strip():
        raise _fail("--why is missing: say why the jobs are cancelled (kept with each job)")
    if bool(job_ids) == bool(workspace):
        raise _fail("name job ids, or pass --workspace WORKSPACE (not both)")
    app = default_app()
    try:
        if workspace:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            done = cancellation.cancel_workspace(
                workspace, why=why, statuses=statuses, who=who, app=app
            )
            result: dict[str, Any] = {"workspace": workspace, "cancelled": done}
        else:
            outcome = cancellation.cancel(job_ids or [], why=why, who=who, app=app)
            result = {"cancelled": outcome.cancelled, "not_cancelled": outcome.not_cancelled}
    except cancellation.CancelError as exc:
        field = {"statuses": "--status", "job_ids": "job ids", "who": "--who"}.get(exc.field)
        raise _fail(f"{field or exc.field}: {str(exc).split(': ', 1)[1]}") from None
    if as_json:
        _emit(result)
        return
    left = result.get("not_cancelled", [])
    console.print(f"cancelled {len(result['cancelled'])} job(s): {result['cancelled'][:20]}")
    if left:
        console.print(f"not cancellable (already finished): {left[:20]}")


workspace_cli = typer.Typer(no_args_is_help=True, help="Pause, resume and tune a workspace.")
cli.add_typer(workspace_cli, name="workspace")


WORKSPACE_FIELDS = ("id", "tier", "weight", "paused", "high_quota_enabled", "rate_limit_per_s")


def _show_workspace(row: dict[str, Any], as_json: bool) -> None:
    shown = {k: row[k] for k in WORKSPACE_FIELDS}
    if as_json:
        _emit(shown)
    else:
        console.print(", ".join(f"{k}={v}" for k, v in shown.items()))


def _set_workspace(workspace: str, as_json: bool, **values: Any) -> None:
    rt = runtime_of(default_app())
    with rt.engine.begin() as conn:
        row = workspaces.update_settings(conn, workspace, rt.now(), **values)
    _show_workspace(row, as_json)


@workspace_cli.command("pause")
def workspace_pause(workspace: str, as_json: JsonFlag = False) -> None:
    """Stop dispatching WORKSPACE's jobs; they stay PENDING (WORKSPACE_PAUSED)."""
    _set_workspace(workspace, as_json, paused=True)


@workspace_cli.command("resume")
def workspace_resume(workspace: str, as_json: JsonFlag = False) -> None:
    """Dispatch WORKSPACE's jobs again."""
    _set_workspace(workspace, as_json, paused=False)


@workspace_cli.command("set")
def workspace_set(
    workspace: str,
    tier: Annotated[str | None, typer.Option(help="Quota tier (FAIRBEAT_TIER_QUOTAS).")] = None,
    weight: Annotated[
        float | None, typer.Option(min=0.1, max=100, help="Fair-share weight.")
    ] = None,
    high_quota: Annotated[
        bool | None, typer.Option("--high-quota/--no-high-quota", help="On the quota ladder.")
    ] = None,
    rate_limit: Annotated[
        float | None, typer.Option(min=0, help="Jobs started per second; 0: the tier's.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set WORKSPACE's tier, weight, quota-ladder flag or start rate limit."""
    settings = runtime_of(default_app()).settings
    if tier is not None and tier not in settings.tier_quotas:
        raise _fail(f"unknown tier {tier!r}; known: {', '.join(sorted(settings.tier_quotas))}")
    if weight is not None and (problem := weight_problem(weight)):
        raise _fail(f"--weight: {problem}")
    if rate_limit is not None and (problem := rate_limit_problem(rate_limit)):
        raise _fail(f"--rate-limit: {problem}")
    values: dict[str, Any] = {"tier": tier, "weight": weight, "high_quota_enabled": high_quota}
    if rate_limit is not None:
        values["rate_limit_per_s"] = rate_limit or None
    _set_workspace(workspace, as_json, **{k: v for k, v in values.items() if v is not None})


@workspace_cli.command("show")
def workspace_show(workspace: str, as_json: JsonFlag = False) -> None:
    """WORKSPACE's settings (defaults when it has no row)."""
    rt = runtime_of(default_app())
    with rt.engine.connect() as conn:
        row = workspaces.get(conn, workspace)
    _show_workspace(row or {"id": workspace, **vars(WorkspaceProfile())}, as_json)


@cli.command("exporter")
def exporter_cmd(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for /metrics.")] = 9808,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics at http://ADDRESS:PORT/metrics until Ctrl-C."""
    from prometheus_client import CollectorRegistry, start_http_server

    from fairbeat.exporter import FairbeatCollector

    registry = CollectorRegistry()
    registry.register(FairbeatCollector(runtime_of(default_app())))
    server, thread = start_http_server(port, addr=address, registry=registry)
    console.print(f"serving fairbeat metrics at http://{address}:{port}/metrics")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


cli.add_typer(controls.capacity_cli, name="capacity")
cli.add_typer(controls.ladder_cli, name="ladder")
cli.add_typer(controls.gate_cli, name="gate")
cli.add_typer(schedule_cli, name="schedule")


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
        raise _fail("--hot cannot exceed --workspaces")
    plan = CanaryPlan(workspaces=workspaces, jobs=jobs, hot=hot, deadline_s=deadline_s)
    result, report = run_canary(default_app(), plan, out)
    if as_json:
        _emit({k: v for k, v in report.items() if k != "samples"})
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
    as_json: JsonFlag = False,
) -> None:
    """Drive the real scheduling policies over a synthetic workload (deterministic)."""
    from fairbeat.scheduling.simulation import Scenario, simulate

    result = simulate(Scenario(minutes=minutes, seed=seed))
    if plot:
        from fairbeat.plot import plot_simulation

        plot_simulation(result, plot)
    data = result.to_dict()
    if as_json:
        _emit(data)
        return
    console.print(data["summary"])
    if plot:
        console.print(f"plot written to {plot}")


def main() -> None:
    try:
        settings = runtime_of(default_app()).settings
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    try:
        cli()
    except OperationalError as exc:
        url = mask_url(settings.database_url)
        err.print(
            f"[red]error:[/red] cannot reach the database at {url}: {mask_urls(str(exc.orig))}"
        )
        sys.exit(1)
    except redis.ConnectionError as exc:
        err.print(f"[red]error:[/red] cannot reach Redis at {mask_url(settings.redis_url)}: {exc}")
        sys.exit(1)
