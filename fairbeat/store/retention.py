"""Pruning finished rows, one bounded batch per statement.

Each batch is ``WITH oldest AS MATERIALIZED (SELECT id ... ORDER BY <indexed
time> LIMIT n FOR UPDATE SKIP LOCKED) DELETE ... WHERE id IN (SELECT id FROM
oldest) AND <the same condition>``: the select walks an index (migration
0006_retention_indexes) and skips rows someone else holds (SQLite has no row
locks; it serialises writers instead), and the condition is checked again on
the rows being deleted, so a row that changed in between (a dead letter
retried back to PENDING) is left alone. Which rows can ever match is fixed here:

- jobs only in their finished state (SUCCEEDED, FAILED, CANCELLED), never
  PENDING, CLAIMED or RUNNING, whatever their age;
- runs never RUNNING, and never the highest-fenced run of a function (it is
  the floor new fences rise from);
- alert episodes only once resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, select
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import TERMINAL, JobStatus
from fairbeat.store.models import (
    alert_table,
    duplicate_event_table,
    function_run_table,
    gate_decision_table,
    health_snapshot_table,
    job_concurrency_key_table,
    job_dependency_table,
    job_table,
)

Condition = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class Target:
    """One prunable kind of row: its table, its time column and what may go before a cutoff."""

    table: Table
    time_column: str
    condition: Condition


def _job(status: JobStatus) -> Condition:
    def condition(before: datetime) -> ColumnElement[bool]:
        return and_(job_table.c.status == status.value, job_table.c.finished_at < before)

    return condition


def _finished_run(before: datetime) -> ColumnElement[bool]:
    run = function_run_table
    successor = function_run_table.alias("successor")
    return and_(
        run.c.status != "RUNNING",
        run.c.finished_at < before,
        exists().where(successor.c.function == run.c.function, successor.c.fence > run.c.fence),
    )


def _older(table: Table, column: str) -> Condition:
    def condition(before: datetime) -> ColumnElement[bool]:
        return table.c[column] < before

    return condition


def _resolved_alert(before: datetime) -> ColumnElement[bool]:
    return and_(alert_table.c.resolved_at.is_not(None), alert_table.c.resolved_at < before)


TARGETS: dict[str, Target] = {
    "job_succeeded": Target(job_table, "finished_at", _job(JobStatus.SUCCEEDED)),
    "job_failed": Target(job_table, "finished_at", _job(JobStatus.FAILED)),
    "job_cancelled": Target(job_table, "finished_at", _job(JobStatus.CANCELLED)),
    "function_run": Target(function_run_table, "finished_at", _finished_run),
    "duplicate_event": Target(
        duplicate_event_table, "created_at", _older(duplicate_event_table, "created_at")
    ),
    "gate_decision": Target(
        gate_decision_table, "decided_at", _older(gate_decision_table, "decided_at")
    ),
    "alert": Target(alert_table, "resolved_at", _resolved_alert),
    "health_snapshot": Target(
        health_snapshot_table, "taken_at", _older(health_snapshot_table, "taken_at")
    ),
}


def prune_batch(conn: Connection, name: str, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest prunable ``name`` rows; how many went."""
    target = TARGETS[name]
    table = target.table
    # PostgreSQL: rows another pruner (or writer) holds are left to it, so two
    # prunes at once neither wait on nor deadlock with each other. Materialised,
    # so the locking, limited select runs once (inlined, PostgreSQL may run it
    # again per row and delete past the limit).
    oldest = (
        select(table.c.id)
        .where(target.condition(before))
        .order_by(table.c[target.time_column])
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("oldest")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    # RETURNING counts on both databases (sqlite3 reports no rowcount after WITH).
    deleted = conn.execute(
        delete(table)
        .where(table.c.id.in_(select(oldest.c.id)), target.condition(before))
        .returning(table.c.id)
    )
    ids = [int(i) for i in deleted.scalars()]
    if table is job_table and ids:  # a pruned job's concurrency keys go with it
        jck = job_concurrency_key_table
        conn.execute(delete(jck).where(jck.c.job_id.in_(ids)))
        # and its own dependency rows: it waits on nothing more.
        dep = job_dependency_table
        conn.execute(delete(dep).where(dep.c.job_id.in_(ids)))
    return len(ids)


def count_prunable(conn: Connection, name: str, before: datetime) -> int:
    """How many ``name`` rows a prune with this cutoff would delete."""
    target = TARGETS[name]
    return int(
        conn.execute(
            select(func.count()).select_from(target.table).where(target.condition(before))
        ).scalar_one()
    )


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per pruned table, and unfinished jobs (which are never pruned)."""
    tables = {TARGETS[name].table for name in TARGETS}
    counts = {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in sorted(tables, key=lambda t: t.name)
    }
    finished = [status.value for status in TERMINAL]
    unfinished = select(func.count()).where(job_table.c.status.not_in(finished))
    counts["job_unfinished"] = int(conn.execute(unfinished).scalar_one())
    return counts
