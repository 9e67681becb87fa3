"""Rows no loop can read: found by SQL, dead-lettered with a clear error, never loaded.

The job table is a plain-SQL contract (docs/sql-contract.md), so it can hold
what Python cannot load: PostgreSQL takes ``'-infinity'``, ``'infinity'``
and years before 1 or after 9999 (psycopg refuses to load them: "timestamp
too small"); SQLite takes any text or number in a DATETIME column. A loop
that loads such a value fails for every workspace, so each loop reads
through ``readable`` and the dispatcher and maintenance ``quarantine`` what
it filters out: the job goes to FAILED, its ``run_at`` is set to now (so that
every later read can load the row) and ``last_error`` names the value found.

- ``in_range``: a range on the column, answered by the ``(status, run_at)``
  index on both databases (SQLite sorts numbers before and blobs after text);
  complete on PostgreSQL, where every stored value is a timestamp.
- ``readable``: on SQLite also ``fairbeat_time_ok(column)``, a function the
  engine registers on each connection (``times.loadable``) that parses the value
  exactly as loading it would. It costs a call per row, so it is only used
  on rows an index has already narrowed down, and by the thorough sweep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    not_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.store.models import UTCDateTime, job_table
from fairbeat.store.times import HIGHEST_TIME, LOWEST_TIME, SQLITE_TIME_OK

job = job_table

# PostgreSQL's INTEGER: a job at this fence cannot be claimed again (fence + 1 overflows).
MAX_FENCE = 2**31 - 1
# One sweep dead-letters at most this many rows; the next takes the rest.
QUARANTINE_BATCH = 1000

POISON_RUN_AT = "POISON_RUN_AT"
POISON_FENCE = "POISON_FENCE"

_OPEN = (JobStatus.PENDING.value, JobStatus.CLAIMED.value)


@dataclass(frozen=True)
class Quarantined:
    job_id: int
    workspace_id: str
    reason_code: str
    error: str


def in_range(column: Any) -> ColumnElement[bool]:
    """True for a time every driver can load, on PostgreSQL; a cheap first cut on SQLite."""
    return and_(column >= LOWEST_TIME, column < HIGHEST_TIME)


def readable(conn: Connection, column: Any) -> ColumnElement[bool]:
    """True exactly for the values of ``column`` that load as an aware datetime."""
    return _readable(conn.dialect.name, column)


def _readable(dialect: str, column: Any) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return in_range(column)
    return and_(in_range(column), getattr(func, SQLITE_TIME_OK)(column) == 1)


def _error(reason: str, value: Any) -> ColumnElement[str]:
    """``last_error`` for a quarantined row, naming the value found, in SQL."""
    if reason == POISON_FENCE:
        text = "fence is at the 32-bit limit and cannot be claimed again"
        return literal(f"{POISON_FENCE}: {text}; dead-lettered", String)
    found = func.coalesce(cast(value, String), "NULL")
    advice = (
        " is not a time fairbeat can schedule (a finite timestamp with a zone, "
        "years 1 to 9999); dead-lettered: fix the row and run `fairbeat jobs retry`"
    )
    return literal(f"{POISON_RUN_AT}: run_at ", String) + found + literal(advice, String)


# Each sweep's reason: the quick ones ask the index, the thorough ones read every open row.
_REASONS = {
    "below": POISON_RUN_AT,
    "above": POISON_RUN_AT,
    "unreadable": POISON_RUN_AT,
    "fence": POISON_FENCE,
}


def _constant(dialect: str, when: datetime) -> ColumnElement[Any]:
    """A time written into the SQL itself: psycopg prepares a statement run this
    often, and PostgreSQL's generic plan for ``run_at < $1`` guessed a third of
    the table and read it (1 ms became 5 to 8 ms per tick)."""
    if dialect == "postgresql":
        return literal_column(f"TIMESTAMPTZ '{when:%Y-%m-%d %H:%M:%S}+00'")
    return literal_column(f"'{when:%Y-%m-%d %H:%M:%S}.000000'")  # SQLite's stored form


def _where(dialect: str, sweep: str) -> ColumnElement[bool]:
    """Which open rows a sweep dead-letters."""
    if sweep == "below":
        return job.c.run_at < _constant(dialect, LOWEST_TIME)
    if sweep == "above":
        return job.c.run_at >= _constant(dialect, HIGHEST_TIME)
    if sweep == "unreadable":
        return not_(_readable(dialect, job.c.run_at))
    return job.c.fence >= MAX_FENCE


# The quick sweep is two range scans of the (status, run_at) index: written as
# one OR, SQLite (with bound parameters) scanned every open row instead.
QUICK = ("below", "above")
THOROUGH = ("unreadable", "fence")


@functools.cache
def _statement(dialect: str, sweep: str) -> Any:
    """One sweep's UPDATE, built once per dialect: the dispatcher runs it every tick."""
    reason = _REASONS[sweep]
    picked = select(job.c.id).where(job.c.status.in_(_OPEN), _where(dialect, sweep))
    chosen: ColumnElement[bool] = job.c.id.in_(picked.limit(QUARANTINE_BATCH).scalar_subquery())
    if dialect == "postgresql":  # a concurrent writer may have moved a row since it was picked
        chosen = and_(chosen, job.c.status.in_(_OPEN))
    # (On SQLite writers take turns, and any condition beside the ids made its
    # planner walk every open row instead of the few picked.)
    now = bindparam("now", type_=UTCDateTime())
    return (
        update(job)
        .where(chosen)
        .values(
            status=JobStatus.FAILED.value,
            last_error=_error(reason, job.c.run_at),
            run_at=now,
            claimed_at=None,
            finished_at=now,
        )
        .returning(job.c.id, job.c.workspace_id, job.c.last_error)
    )


def quarantine(conn: Connection, now: datetime, *, thorough: bool = False) -> list[Quarantined]:
    """Dead-letter PENDING and CLAIMED jobs no loop could load or claim.

    The quick sweep (each dispatch tick) asks the index only; ``thorough``
    (each maintenance run) also parses every open row's ``run_at`` on SQLite
    and finds fences at the limit, reading every open row once.
    """
    out = []
    for sweep in THOROUGH if thorough else QUICK:
        reason = _REASONS[sweep]
        rows = conn.execute(_statement(conn.dialect.name, sweep), {"now": now}).all()
        out += [Quarantined(int(r.id), r.workspace_id, reason, r.last_error) for r in rows]
    return out


def claimable(conn: Connection) -> ColumnElement[bool]:
    """The claim's own guard: only rows whose claim can be loaded and fenced again."""
    return and_(readable(conn, job.c.run_at), job.c.fence < MAX_FENCE)
