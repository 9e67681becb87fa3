"""``fairbeat jobs tree ID``: a job's family, its ancestors and descendants with status.

Ancestors follow parent links (the job whose handler enqueued it) up to the
root; descendants are its children and the jobs enqueued ``after`` it, each
shown once, at most ``FAMILY_LIMIT`` of them.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.tree import Tree

from fairbeat.cli_errors import CliError
from fairbeat.cli_output import console
from fairbeat.cli_support import JOB_ID_MAX, emit_json, runtime

# As fairbeat.store.FAMILY_LIMIT, which the CLI imports only when the command runs.
FAMILY_LIMIT = 500

STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "RUNNING": "cyan",
    "CLAIMED": "cyan",
    "WAITING": "magenta",
}


def _label(node: dict[str, Any], link: str = "") -> str:
    status = str(node["status"])
    style = STYLE.get(status, "white")
    head = f"{link} " if link else ""
    text = f"{head}[b]#{node['id']}[/b] {node['kind']} [{style}]{status}[/{style}]"
    error = (node.get("last_error") or "").strip().splitlines()[-1:]
    return text + (f"  [dim]{error[0][:80]}[/dim]" if error else "")


def _grow(tree: Tree, node: dict[str, Any]) -> None:
    for child in node["children"]:
        link = "child" if child["link"] == "child" else "after"
        _grow(tree.add(_label(child, f"[dim]{link}[/dim]"), highlight=False), child)


def render(family: dict[str, Any]) -> Tree:
    me = family["job"]
    top = Tree(f"[b]workspace {me['workspace_id']}[/b]", highlight=False)
    branch = top
    for ancestor in family["ancestors"]:
        branch = branch.add(_label(ancestor), highlight=False)
    here = branch.add(_label(me, "[b]▶[/b]"), highlight=False)
    for parent in family["after"]:
        here.add(_label(parent, "[dim]runs after[/dim]"), highlight=False)
    _grow(here, me)
    if family["truncated"]:
        top.add(f"[dim]… more than {FAMILY_LIMIT} jobs; the rest not shown[/dim]")
    return top


def jobs_tree(
    job_id: Annotated[int, typer.Argument(help="Any job of the family.", min=1, max=JOB_ID_MAX)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A job's family: its ancestors, the jobs it runs after, and its descendants."""
    from fairbeat.store import families

    with runtime().engine.connect() as conn:
        family = families.family(conn, job_id)
    if family is None:
        raise CliError(f"JOB_ID: no job with id {job_id}")
    if as_json:
        emit_json(family)
        return
    console.print(render(family))
