"""``after`` and child jobs: the checks ``enqueue`` and ``job_context().enqueue`` share.

Kept apart from ``api`` so the run module can use them without importing
``api`` (which imports the run module).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy.engine import Connection

from fairbeat.scheduling.dependencies import DependencyPolicy, InitialWait, initial_wait
from fairbeat.store import families, selection
from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull
from fairbeat.tasks.runtime import runtime_of

AFTER_MAX = 100  # jobs one job may run after; a wider fan-in is a batch, not a dependency


def after_ids(after: Any) -> tuple[int, ...]:
    """``after`` as sorted unique job ids, its shape checked (not yet the database)."""
    if after is None:
        return ()
    if isinstance(after, str | bytes | dict) or not isinstance(after, list | tuple | set):
        raise EnqueueError("after", "must be a list of job ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in after):
        raise EnqueueError("after", "must hold positive integer job ids only")
    ids = tuple(sorted(set(after)))
    if len(ids) > AFTER_MAX:
        raise EnqueueError("after", f"names {len(ids)} jobs, over the limit of {AFTER_MAX}")
    return ids


def check_after(app: Celery, workspace_id: str, after: Any) -> tuple[int, ...]:
    """``after`` checked now against the database, as a later insert will check it."""
    ids = after_ids(after)
    if ids:
        with runtime_of(app).engine.connect() as conn:
            wait_for(conn, workspace_id, ids, strict=True)
    return ids


def check_room(app: Celery, workspace_id: str, buffered: int) -> None:
    """The pending limit, counting ``buffered`` jobs not inserted yet."""
    settings = runtime_of(app).settings
    limit = settings.pending_limit
    with runtime_of(app).engine.connect() as conn:
        pending = selection.pending_count(conn, workspace_id, limit)
    if pending + buffered >= limit:
        raise WorkspaceBacklogFull(workspace_id, limit, settings.pending_retry_after_s)


def wait_for(
    conn: Connection, workspace_id: str, after: tuple[int, ...], strict: bool
) -> InitialWait:
    found = families.parents(conn, after)
    unknown = [i for i in after if found.get(i, ("", None))[0] != workspace_id]
    if unknown:
        # One message for missing and foreign ids: another workspace's jobs stay unseen.
        raise EnqueueError(
            "after",
            f"job(s) {unknown[:5]} not found in workspace {workspace_id!r}; "
            "a job runs only after existing jobs of its own workspace",
        )
    wait = initial_wait((i, found[i][1]) for i in after)
    if strict and wait.refused_parent is not None:
        status = found[wait.refused_parent][1].value
        raise EnqueueError(
            "after",
            f"job {wait.refused_parent} is already {status} and can never succeed; "
            "retry it first (fairbeat jobs retry) or leave it out",
        )
    return wait


def start_waiting(
    conn: Connection,
    job_id: int,
    after: tuple[int, ...],
    wait: InitialWait,
    policy: DependencyPolicy,
    now: datetime,
) -> None:
    """Write a new job's dependency rows; a parent found FAILED or CANCELLED
    (``wait.refused_parent``, only when not strict) ends it at once."""
    families.add_dependencies(conn, job_id, after)
    if wait.refused_parent is not None and wait.refused_status is not None:
        families.settle(conn, wait.refused_parent, wait.refused_status, policy, now)
