"""``fairbeat jobs`` and ``fairbeat workspace``: list, retry and cancel jobs;
pause, resume and tune a workspace."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fairbeat.cli_errors import CliError
from fairbeat.cli_output import cell, console
from fairbeat.cli_support import (
    check_job_ids,
    check_workspace,
    emit_json,
    parse_status,
    refuse_unknown,
    runtime,
)
from fairbeat.family_cli import jobs_tree

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Why = Annotated[str, typer.Option("--why", help="Why: kept in the audit trail.")]
Who = Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")]

jobs_cli = typer.Typer(no_args_is_help=True, help="List, retry and cancel jobs; show a family.")
jobs_cli.command("tree")(jobs_tree)
workspace_cli = typer.Typer(no_args_is_help=True, help="Pause, resume and tune a workspace.")


@jobs_cli.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="pending, failed, ... (any case)")] = None,
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest jobs, optionally of one status and workspace (dead letters: --status failed)."""
    from rich.table import Table

    from fairbeat.store import job_queries

    wanted = parse_status(status).value if status else None
    with runtime().engine.connect() as conn:
        rows = job_queries.list_jobs(conn, status=wanted, workspace_id=workspace, limit=limit)
    if as_json:
        emit_json({"jobs": rows})
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
    *,
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Run dead-lettered (FAILED) jobs again, with fresh attempts."""
    from fairbeat import audit
    from fairbeat.store import job_queries
    from fairbeat.tasks.kick import kick

    if not job_ids and not all_failed:
        raise CliError("name JOB_IDS, or pass --all-failed")
    ids = None if all_failed else check_job_ids(job_ids or [])
    rt = runtime()
    with rt.engine.begin() as conn:
        if ids is not None:
            refuse_unknown(ids, job_queries.existing(conn, ids), "retried")
        retried = job_queries.retry_dead(conn, rt.now(), ids, workspace)
        value = {"requested": ids or "all-failed", "retried": retried}
        audit.record(conn, rt.now(), "jobs.retry", why, who, workspace, value)
    if retried:
        from fairbeat.cli_support import app

        kick(app(), "operator retry")
    left = sorted(set(ids or []) - set(retried))
    if as_json:
        emit_json({"retried": retried, "not_failed": left})
    else:
        console.print(f"{len(retried)} job(s) back to PENDING: {cell(retried[:20])}")
        if left:
            console.print(f"not dead letters (not FAILED), left as they are: {cell(left[:20])}")


@jobs_cli.command("cancel")
def jobs_cancel(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Job ids.")] = None,
    why: Annotated[str | None, typer.Option("--why", help="Why: kept with each job.")] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Instead of ids: this workspace's whole backlog.")
    ] = None,
    status: Annotated[
        str, typer.Option(help="With --workspace: the statuses to cancel, comma-separated.")
    ] = "waiting,pending,claimed,running",
    who: Annotated[str | None, typer.Option("--who", help="Who (default: user@host).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel jobs, running ones too: a running handler sees job_context().cancelled,
    and is terminated after FAIRBEAT_CANCEL_GRACE_S."""
    from fairbeat.cli_support import app
    from fairbeat.tasks import cancellation  # only this command needs it

    if not why or not why.strip():
        raise CliError("--why is missing: say why the jobs are cancelled (kept with each job)")
    if bool(job_ids) == bool(workspace):
        raise CliError("name job ids, or pass --workspace WORKSPACE (not both)")
    ids = check_job_ids(job_ids or [])
    runtime()  # refuses a database never migrated
    try:
        if workspace:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            done = cancellation.cancel_workspace(
                workspace, why=why, statuses=statuses, who=who, app=app()
            )
            result: dict[str, Any] = {"workspace": workspace, "cancelled": done}
        else:
            outcome = cancellation.cancel(ids, why=why, who=who, app=app())
            result = {"cancelled": outcome.cancelled, "not_cancelled": outcome.not_cancelled}
    except cancellation.CancelError as exc:
        field = {"statuses": "--status", "job_ids": "JOB_IDS", "who": "--who"}.get(exc.field)
        raise CliError(f"{field or exc.field}: {str(exc).split(': ', 1)[1]}") from None
    if as_json:
        emit_json(result)
        return
    left = result.get("not_cancelled", [])
    console.print(f"cancelled {len(result['cancelled'])} job(s): {cell(result['cancelled'][:20])}")
    if left:
        console.print(f"not cancellable (already finished): {cell(left[:20])}")


WORKSPACE_FIELDS = ("id", "tier", "weight", "paused", "high_quota_enabled", "rate_limit_per_s")


def _show_workspace(row: dict[str, Any], as_json: bool) -> None:
    shown = {k: row[k] for k in WORKSPACE_FIELDS}
    if as_json:
        emit_json(shown)
    else:
        console.print(", ".join(f"{k}={v}" for k, v in shown.items()), highlight=False)


def _set_workspace(
    workspace: str, as_json: bool, action: tuple[str, str, str | None], **values: Any
) -> None:
    """Change WORKSPACE's row and record ``action`` (name, why, who) in one transaction."""
    from fairbeat import audit
    from fairbeat.store import workspaces

    rt = runtime()
    name, why, who = action
    with rt.engine.begin() as conn:
        row = workspaces.update_settings(conn, workspace, rt.now(), **values)
        audit.record(conn, rt.now(), name, why, who, workspace, values)
    _show_workspace(row, as_json)


@workspace_cli.command("pause")
def workspace_pause(workspace: str, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Stop dispatching WORKSPACE's jobs; they stay PENDING (WORKSPACE_PAUSED)."""
    _set_workspace(check_workspace(workspace), as_json, ("workspace.pause", why, who), paused=True)


@workspace_cli.command("resume")
def workspace_resume(workspace: str, why: Why, who: Who = None, as_json: JsonFlag = False) -> None:
    """Dispatch WORKSPACE's jobs again."""
    _set_workspace(
        check_workspace(workspace), as_json, ("workspace.resume", why, who), paused=False
    )


SETTABLE = "--tier, --weight, --high-quota/--no-high-quota or --rate-limit"


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
        float | None, typer.Option(min=0, help="Jobs started per second; 0: no limit at all.")
    ] = None,
    *,
    why: Why,
    who: Who = None,
    as_json: JsonFlag = False,
) -> None:
    """Set WORKSPACE's tier, weight, quota-ladder flag or start rate limit."""
    check_workspace(workspace)
    values: dict[str, Any] = {
        k: v
        for k, v in {"tier": tier, "weight": weight, "high_quota_enabled": high_quota}.items()
        if v is not None
    }
    if rate_limit is not None:
        values["rate_limit_per_s"] = rate_limit  # 0 is kept: no limit, not even the tier's
    if not values:
        raise CliError(f"nothing to set for {workspace!r}: give {SETTABLE}")
    from fairbeat.scheduling.limits import rate_limit_problem, weight_problem

    if weight is not None and (problem := weight_problem(weight)):
        raise CliError(f"--weight: {problem}")
    if rate_limit is not None and (problem := rate_limit_problem(rate_limit)):
        raise CliError(f"--rate-limit: {problem}")
    settings = runtime().settings
    if tier is not None and tier not in settings.tier_quotas:
        raise CliError(f"unknown tier {tier!r}; known: {', '.join(sorted(settings.tier_quotas))}")
    _set_workspace(workspace, as_json, ("workspace.set", why, who), **values)


@workspace_cli.command("show")
def workspace_show(workspace: str, as_json: JsonFlag = False) -> None:
    """WORKSPACE's settings (defaults when it has no row)."""
    from fairbeat.store import workspaces
    from fairbeat.store.selection import WorkspaceProfile

    with runtime().engine.connect() as conn:
        row = workspaces.get(conn, check_workspace(workspace))
    _show_workspace(row or {"id": workspace, **vars(WorkspaceProfile())}, as_json)
