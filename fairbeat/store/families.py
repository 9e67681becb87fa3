"""Job families: child jobs (``parent_id``) and jobs that run after others.

A job enqueued ``after`` others is inserted WAITING with ``waiting_on`` the
number of them not yet SUCCEEDED, plus one ``job_dependency`` row per parent.
:func:`settle` is the one place a job's end reaches its dependents: call it
in the same transaction as the update that ended the job (success, failure,
recovery to FAILED, cancel), so no dependent is left waiting on a job that
already ended. Selection never sees WAITING jobs, so it is unchanged.

Functions take a Connection; the caller owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.engine import Connection

from fairbeat.scheduling.dependencies import (
    BROKEN,
    DependencyPolicy,
    dependency_error,
    on_parent_end,
)
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store import transitions
from fairbeat.store.db import is_postgres
from fairbeat.store.jobs import job
from fairbeat.store.models import job_dependency_table

dependency = job_dependency_table

# One family shown by ``fairbeat jobs tree`` holds at most this many jobs.
FAMILY_LIMIT = 500


def parents(conn: Connection, job_ids: Iterable[int]) -> dict[int, tuple[str, JobStatus]]:
    """The (workspace, status) of each named job that exists, locked on PostgreSQL
    until the caller commits, so none can end between this read and the insert
    of its dependent's rows (SQLite's BEGIN IMMEDIATE serialises writers anyway)."""
    rows = conn.execute(
        select(job.c.id, job.c.workspace_id, job.c.status)
        .where(job.c.id.in_(list(job_ids)))
        .with_for_update()
    ).all()
    return {int(r.id): (r.workspace_id, JobStatus(r.status)) for r in rows}


def add_dependencies(conn: Connection, job_id: int, depends_on: Iterable[int]) -> None:
    conn.execute(insert(dependency), [{"job_id": job_id, "depends_on": p} for p in depends_on])


def settle(
    conn: Connection, job_id: int, status: JobStatus, policy: DependencyPolicy, now: datetime
) -> list[int]:
    """What the end of ``job_id`` (as ``status``) does to the jobs waiting on it.

    SUCCEEDED takes one off each dependent's count and releases the ones at
    zero to PENDING; FAILED or CANCELLED ends them by ``policy``, and their
    own dependents in turn. Returns the dependents moved to another status.
    """
    if status == JobStatus.SUCCEEDED:
        return _release(conn, job_id)
    if status in BROKEN:
        return _end_dependents(conn, job_id, status, policy, now)
    return []


def settle_all(
    conn: Connection,
    job_ids: Iterable[int],
    status: JobStatus,
    policy: DependencyPolicy,
    now: datetime,
) -> list[int]:
    """:func:`settle` for each of ``job_ids`` (all ended as ``status``)."""
    moved: list[int] = []
    for job_id in job_ids:
        moved += settle(conn, job_id, status, policy, now)
    return sorted(moved)


def succeed(conn: Connection, job_id: int, fence: int, now: datetime) -> bool:
    """``transitions.succeed`` and ``settle(SUCCEEDED)`` at once: on PostgreSQL
    one statement, which commits alone in autocommit (the success path keeps
    its single round trip); on SQLite the caller's transaction holds both."""
    if not is_postgres(conn):
        if not transitions.succeed(conn, job_id, fence, now):
            return False
        _release(conn, job_id)
        return True
    params = transitions.success_params(job_id, fence, now)
    succeeded, _ = conn.execute(_succeed_and_release(), params).one()
    return int(succeeded) == 1


@functools.cache
def _succeed_and_release() -> Any:
    """PostgreSQL: the success and the release of its dependents in one statement, built once."""
    done = transitions.succeeded_statement().returning(job.c.id).cte("done")
    waiting = select(dependency.c.job_id).where(dependency.c.depends_on.in_(select(done.c.id)))
    released = _release_update(job.c.id.in_(waiting)).cte("released")
    return select(
        select(func.count()).select_from(done).scalar_subquery(),
        select(func.count()).select_from(released).scalar_subquery(),
    )


def _waiting_on(parent_id: int) -> Any:
    return job.c.id.in_(select(dependency.c.job_id).where(dependency.c.depends_on == parent_id))


def _release_update(dependents: Any) -> Any:
    # One statement: concurrent parents' updates of a shared dependent queue on
    # its row lock, and each sees the count the previous one left.
    return (
        update(job)
        .where(dependents, job.c.status == JobStatus.WAITING.value)
        .values(
            waiting_on=job.c.waiting_on - 1,
            status=case(
                (job.c.waiting_on <= 1, JobStatus.PENDING.value), else_=JobStatus.WAITING.value
            ),
        )
        .returning(job.c.id, job.c.status)
    )


def _release(conn: Connection, parent_id: int) -> list[int]:
    rows = conn.execute(_release_update(_waiting_on(parent_id))).all()
    return sorted(int(r.id) for r in rows if r.status == JobStatus.PENDING.value)


def _end_dependents(
    conn: Connection, parent_id: int, status: JobStatus, policy: DependencyPolicy, now: datetime
) -> list[int]:
    ended: list[int] = []
    frontier = [(parent_id, status)]
    while frontier:
        parent, parent_status = frontier.pop()
        rows = conn.execute(
            select(job.c.id, job.c.waiting_on).where(
                _waiting_on(parent), job.c.status == JobStatus.WAITING.value
            )
        ).all()
        for row in rows:
            decision = on_parent_end(
                parent_id=parent,
                parent_status=parent_status,
                waiting_on=max(int(row.waiting_on), 1),
                policy=policy,
            )
            moved = conn.execute(
                update(job)
                .where(job.c.id == row.id, job.c.status == JobStatus.WAITING.value)
                .values(
                    status=decision.to_status.value,
                    finished_at=now,
                    last_error=dependency_error(decision, policy),
                )
            ).rowcount
            if moved == 1:
                ended.append(int(row.id))
                frontier.append((int(row.id), decision.to_status))
    return sorted(ended)


def depends_on(conn: Connection, job_id: int) -> list[int]:
    """The jobs ``job_id`` runs after."""
    rows = conn.execute(
        select(dependency.c.depends_on)
        .where(dependency.c.job_id == job_id)
        .order_by(dependency.c.depends_on)
    ).scalars()
    return [int(r) for r in rows]


_SHOWN = (
    job.c.id,
    job.c.workspace_id,
    job.c.kind,
    job.c.status,
    job.c.parent_id,
    job.c.created_at,
    job.c.started_at,
    job.c.finished_at,
    job.c.last_error,
)


def _jobs(conn: Connection, where: Any) -> list[dict[str, Any]]:
    rows = conn.execute(select(*_SHOWN).where(where).order_by(job.c.id)).mappings()
    return [dict(r) for r in rows]


def family(conn: Connection, job_id: int) -> dict[str, Any] | None:
    """``job_id`` with its ancestors (parent links, root first), the jobs it
    runs after, and its descendants (children and dependents, each once) as a
    tree; at most FAMILY_LIMIT of them (``truncated`` says so). None: no such job."""
    found = _jobs(conn, job.c.id == job_id)
    if not found:
        return None
    root = found[0] | {"link": "self", "children": []}
    ancestors: list[dict[str, Any]] = []
    up = root["parent_id"]
    while up is not None and len(ancestors) < FAMILY_LIMIT:
        rows = _jobs(conn, job.c.id == up)
        if not rows:
            break
        ancestors.insert(0, rows[0])
        up = rows[0]["parent_id"]
    after = _jobs(conn, job.c.id.in_(depends_on(conn, job_id)))
    truncated = _descendants(conn, root)
    return {"job": root, "ancestors": ancestors, "after": after, "truncated": truncated}


def _descendants(conn: Connection, root: dict[str, Any]) -> bool:
    """Fill in ``children`` level by level; True when FAMILY_LIMIT cut it short."""
    seen = {int(root["id"])}
    level = [root]
    while level:
        by_id = {int(n["id"]): n for n in level}
        ids = list(by_id)
        children = _jobs(conn, job.c.parent_id.in_(ids))
        links = conn.execute(
            select(dependency.c.job_id, dependency.c.depends_on).where(
                dependency.c.depends_on.in_(ids)
            )
        ).all()
        dependents = {int(d["id"]): d for d in _jobs(conn, job.c.id.in_([r[0] for r in links]))}
        found = [(c, int(c["parent_id"]), "child") for c in children]
        found += [(dependents[int(j)], int(p), "after") for j, p in links if int(j) in dependents]
        level = []
        for node, under, link in found:
            if int(node["id"]) in seen:
                continue
            if len(seen) >= FAMILY_LIMIT:
                return True
            seen.add(int(node["id"]))
            shown = node | {"link": link, "children": []}
            by_id[under]["children"].append(shown)
            level.append(shown)
    return False
