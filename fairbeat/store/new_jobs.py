"""Inserting jobs: a new PENDING row, or the existing one its dedupe key names.

Functions take a Connection; the caller owns the transaction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.db import insert_ignoring_conflicts, insert_on_dialect
from fairbeat.store.jobs import job


@dataclass(frozen=True)
class NewJob:
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    run_at: datetime
    priority: int
    max_attempts: int
    dedupe_key: str | None
    created_at: datetime
    parent_id: int | None = None  # the job whose handler enqueued this one
    status: JobStatus = JobStatus.PENDING  # WAITING: it runs after others (job_dependency)
    waiting_on: int = 0
    priority_class: str = "default"  # across workspaces (FAIRBEAT_PRIORITY_CLASSES)


def insert_job(conn: Connection, new: NewJob) -> tuple[int, bool]:
    """Insert a PENDING (or WAITING) job: (job id, True), or (existing id, False) for a
    known dedupe key."""
    values = {
        "workspace_id": new.workspace_id,
        "kind": new.kind,
        "payload": new.payload,
        "status": new.status.value,
        "priority": new.priority,
        "run_at": new.run_at,
        "max_attempts": new.max_attempts,
        "dedupe_key": new.dedupe_key,
        "created_at": new.created_at,
        "parent_id": new.parent_id,
        "waiting_on": new.waiting_on,
        "priority_class": new.priority_class,
    }
    inserted = conn.execute(_insert_statement(conn.dialect.name), values).scalar_one_or_none()
    if inserted is not None:
        return int(inserted), True
    existing = (
        find_by_dedupe_key(conn, new.workspace_id, new.dedupe_key) if new.dedupe_key else None
    )
    if existing is None:  # only the dedupe key can conflict; anything else is a bug
        raise RuntimeError(f"insert of a job for {new.workspace_id!r} conflicted unexpectedly")
    return existing, False


@functools.cache
def _insert_statement(dialect: str) -> Insert:
    """The single-job INSERT, built once per dialect and run with the job's values:
    enqueue's hot path skips building and hashing a statement per job."""
    return insert_on_dialect(dialect, job).returning(job.c.id)


def find_by_dedupe_key(conn: Connection, workspace_id: str, dedupe_key: str) -> int | None:
    found = conn.execute(
        select(job.c.id).where(job.c.workspace_id == workspace_id, job.c.dedupe_key == dedupe_key)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def replace_pending(
    conn: Connection, job_id: int, payload: dict[str, Any], run_at: datetime
) -> bool:
    """Give a still-PENDING job a new payload and run_at; False once it was claimed.

    The status condition makes it safe against a claim: on PostgreSQL an
    UPDATE that waited on the claim's row lock re-reads the row and finds it
    CLAIMED; on SQLite the two writes cannot overlap at all.
    """
    result = conn.execute(
        update(job)
        .where(job.c.id == job_id, job.c.status == JobStatus.PENDING.value)
        .values(payload=payload, run_at=run_at)
    )
    return result.rowcount == 1


def _values(new: NewJob) -> dict[str, Any]:
    return {
        "workspace_id": new.workspace_id,
        "kind": new.kind,
        "payload": new.payload,
        "status": JobStatus.PENDING.value,
        "priority": new.priority,
        "run_at": new.run_at,
        "max_attempts": new.max_attempts,
        "dedupe_key": new.dedupe_key,
        "created_at": new.created_at,
        "priority_class": new.priority_class,
    }


def insert_jobs(conn: Connection, news: list[NewJob]) -> list[int]:
    """Insert PENDING jobs without dedupe keys in one statement; their ids, in order."""
    if not news:
        return []
    stmt = insert(job).returning(job.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(stmt, [_values(n) for n in news]).scalars()]


DedupeKey = tuple[str, str]  # (workspace id, dedupe key)


def find_by_dedupe_keys(conn: Connection, keys: list[DedupeKey]) -> dict[DedupeKey, int]:
    """The ids of the jobs these (workspace, dedupe key) pairs name, where any do."""
    found: dict[DedupeKey, int] = {}
    for workspace_id in sorted({w for w, _ in keys}):
        wanted = sorted({k for w, k in keys if w == workspace_id})
        rows = conn.execute(
            select(job.c.dedupe_key, job.c.id).where(
                job.c.workspace_id == workspace_id, job.c.dedupe_key.in_(wanted)
            )
        )
        found.update({(workspace_id, str(key)): int(i) for key, i in rows})
    return found


def insert_keyed_jobs(conn: Connection, news: list[NewJob]) -> dict[DedupeKey, int]:
    """Insert jobs with dedupe keys in one statement, skipping keys taken meanwhile.

    Returns the ids of the rows this statement inserted; a key another
    transaction took since the caller looked is absent (look it up again).
    """
    if not news:
        return {}
    stmt = insert_ignoring_conflicts(conn, job).returning(
        job.c.workspace_id, job.c.dedupe_key, job.c.id
    )
    rows = conn.execute(stmt, [_values(n) for n in news])
    return {(str(w), str(k)): int(i) for w, k, i in rows}
