"""Partition-aware selection: what the dispatcher reads and claims each tick.

Every query here costs in proportion to the number of *active* workspaces
(and the jobs claimed), never to the backlog:

- the active workspaces come from a loose index scan (a recursive CTE that
  jumps from one workspace to the next on ``ix_job_due``), one index probe
  per workspace however many jobs each holds;
- each workspace's due count stops at ``limit`` (the partition cap + 1);
- a claim takes, per workspace, its planned number of jobs in its own order
  (priority, run_at, id) through ``ix_job_due``.

A fair-claim query that ranks every queued row with ``ROW_NUMBER() OVER
(PARTITION BY workspace_id ...)`` reads the whole backlog each tick; that is
what breaks down near tens of thousands of queued rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import TextClause, bindparam, func, select, text
from sqlalchemy.engine import Connection

from fairbeat.scheduling.jobstate import IN_FLIGHT, JobStatus
from fairbeat.scheduling.limits import check_limits
from fairbeat.scheduling.quota import WorkspaceProfile as WorkspaceProfile
from fairbeat.store import concurrency, poison
from fairbeat.store.claiming import CLAIM_COLUMNS, Claim, claim_from, claim_ids, due_in_workspace
from fairbeat.store.db import is_postgres
from fairbeat.store.jobs import job
from fairbeat.store.models import UTCDateTime, workspace_table
from fairbeat.store.runs import still_current
from fairbeat.store.times import LOWEST_TIME

# Keeps each IN (...) list well under every driver's parameter limit.
CHUNK = 5000

_DUE_BY_WORKSPACE = """
    WITH RECURSIVE ws(id) AS (
        SELECT (SELECT min(workspace_id) FROM job WHERE status = 'PENDING'{class_filter})
        UNION ALL
        SELECT (SELECT min(j.workspace_id) FROM job j
                WHERE j.status = 'PENDING'{j_class_filter} AND j.workspace_id > ws.id)
        FROM ws WHERE ws.id IS NOT NULL
    )
    SELECT ws.id AS workspace_id,
           (SELECT count(*) FROM (
                SELECT 1 FROM job j
                WHERE j.status = 'PENDING'{j_class_filter} AND j.workspace_id = ws.id
                  AND j.run_at <= :now AND j.run_at >= :lowest
                LIMIT :limit) due_jobs) AS due
    FROM ws WHERE ws.id IS NOT NULL
    """


def due_statement(by_class: bool) -> TextClause:
    """Each workspace's due jobs, counted up to ``:limit``: of every class, or of
    the class ``:cls`` only."""
    sql = _DUE_BY_WORKSPACE.format(
        class_filter=" AND priority_class = :cls" if by_class else "",
        j_class_filter=" AND j.priority_class = :cls" if by_class else "",
    )
    return text(sql).bindparams(
        bindparam("now", type_=UTCDateTime()), bindparam("lowest", type_=UTCDateTime())
    )


_DUE_ALL = due_statement(by_class=False)

# PostgreSQL: one statement claims every workspace's share, each through its
# own LATERAL index scan; SKIP LOCKED leaves rows another claimer holds. The
# update finds the picked rows by primary key through ANY(ARRAY(...)): joined
# with UPDATE .. FROM, the planner misjudged the CTE's size and hashed the
# whole table (a 1M-row sequential scan per tick, seen in the benchmark).
# Rows whose run_at cannot be loaded, or whose fence cannot grow, are skipped
# (store/poison.py): one such row must not fail the claim for everyone.
# Per (workspace, class) the plan names the class too (store/class_selection.py).
CLAIM_PLANNED_PG = """
    WITH plan AS (
        SELECT * FROM unnest({plan}) AS {plan_columns}
    ), picked AS MATERIALIZED (
        SELECT pick.id FROM plan CROSS JOIN LATERAL (
            SELECT j.id FROM job j
            WHERE j.status = 'PENDING' AND j.workspace_id = plan.ws{class_filter}
              AND j.run_at <= :now AND j.run_at >= :lowest AND j.fence < :max_fence
              -- A keyed job committed after this claim chose the plain path
              -- waits for the keyed claim (one primary-key probe per row).
              AND NOT EXISTS (SELECT 1 FROM job_concurrency_key k WHERE k.job_id = j.id)
            ORDER BY j.priority DESC, j.run_at, j.id
            LIMIT plan.n
            FOR UPDATE SKIP LOCKED
        ) pick
    )
    UPDATE job SET status = 'CLAIMED', fence = job.fence + 1, claimed_at = :now
    WHERE job.id = ANY(ARRAY(SELECT id FROM picked)) AND job.status = 'PENDING'
      AND (CAST(:run_id AS bigint) IS NULL OR (
           EXISTS (SELECT 1 FROM function_run r
                   WHERE r.id = :run_id AND r.status = 'RUNNING')
           AND NOT EXISTS (SELECT 1 FROM function_run s
                           WHERE s.function = 'dispatch' AND s.fence > :fence)))
    RETURNING job.id, job.fence, job.workspace_id, job.kind, job.priority, job.run_at,
        job.attempts, job.priority_class
    """


def claim_statement(by_class: bool) -> TextClause:
    """The PostgreSQL claim of a plan per workspace, or per (workspace, class)."""
    if by_class:
        plan = "CAST(:workspaces AS text[]), CAST(:classes AS text[]), CAST(:counts AS int[])"
        sql = CLAIM_PLANNED_PG.format(
            plan=plan, plan_columns="p(ws, cls, n)", class_filter=" AND j.priority_class = plan.cls"
        )
    else:
        plan = "CAST(:workspaces AS text[]), CAST(:counts AS int[])"
        sql = CLAIM_PLANNED_PG.format(plan=plan, plan_columns="p(ws, n)", class_filter="")
    return text(sql).bindparams(
        bindparam("now", type_=UTCDateTime()), bindparam("lowest", type_=UTCDateTime())
    )


_CLAIM_PLANNED_PG = claim_statement(by_class=False)
_CLAIM_BY_CLASS_PG = claim_statement(by_class=True)


def profile_from(
    tier: str, weight: object, paused: bool, high_quota_enabled: bool, rate_limit_per_s: object
) -> WorkspaceProfile:
    """A profile from a workspace row as stored, whatever SQL put in its limits."""
    limits = check_limits(weight, rate_limit_per_s)
    return WorkspaceProfile(
        tier=str(tier),
        weight=limits.weight,
        paused=bool(paused),
        high_quota_enabled=bool(high_quota_enabled),
        rate_limit_per_s=limits.rate_limit_per_s,
        misconfigured=dict(limits.evidence) if limits.reason_code else None,
    )


def due_by_workspace(conn: Connection, now: datetime, limit: int) -> dict[str, int]:
    """Workspace -> due jobs, counted up to ``limit``, for every workspace with any due."""
    params = {"now": now, "lowest": LOWEST_TIME, "limit": limit}
    rows = conn.execute(_DUE_ALL, params).all()
    return {r.workspace_id: int(r.due) for r in rows if r.due}


def in_flight_by_workspace(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(job.c.workspace_id, func.count())
        .where(job.c.status.in_([s.value for s in IN_FLIGHT]))
        .group_by(job.c.workspace_id)
    ).all()
    return {workspace: int(n) for workspace, n in rows}


def finished_since(conn: Connection, since: datetime) -> int:
    """Jobs that finished (any outcome) at or after ``since``, through ix_job_finished_at."""
    return int(conn.execute(select(func.count()).where(job.c.finished_at >= since)).scalar_one())


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def profiles(conn: Connection, workspace_ids: Iterable[str]) -> dict[str, WorkspaceProfile]:
    """Each workspace's settings; one with no row gets the defaults."""
    ids = sorted(set(workspace_ids))
    out = dict.fromkeys(ids, WorkspaceProfile())
    ws = workspace_table
    for chunk in _chunks(ids):
        rows = conn.execute(
            select(
                ws.c.id,
                ws.c.tier,
                ws.c.weight,
                ws.c.paused,
                ws.c.high_quota_enabled,
                ws.c.rate_limit_per_s,
            ).where(ws.c.id.in_(chunk))
        ).all()
        for r in rows:
            out[r.id] = profile_from(
                r.tier, r.weight, r.paused, r.high_quota_enabled, r.rate_limit_per_s
            )
    return out


Slot = tuple[str, str | None]  # (workspace, stored priority class; None: any class)


def claim_planned(
    conn: Connection,
    now: datetime,
    plan: Mapping[str, int],
    run: tuple[int, int] | None = None,
    named_limits: Mapping[str, int] | None = None,
    key_held: dict[str, int] | None = None,
) -> list[Claim]:
    """Claim ``plan[workspace]`` due jobs of each workspace, in the workspace's own
    order, whatever their class (:func:`claim_slots`)."""
    slots: dict[Slot, int] = {(w, None): n for w, n in plan.items()}
    return claim_slots(conn, now, slots, run, named_limits, key_held)


def claim_slots(
    conn: Connection,
    now: datetime,
    plan: Mapping[Slot, int],
    run: tuple[int, int] | None = None,
    named_limits: Mapping[str, int] | None = None,
    key_held: dict[str, int] | None = None,
) -> list[Claim]:
    """Claim ``plan[(workspace, class)]`` due jobs of each workspace stored with that
    class (every class None: of any class), in the workspace's own order.

    With ``run`` (run id, fence), nothing is claimed once that dispatch run was
    declared stale or a successor with a higher fence began. Once any job has
    carried a concurrency key, the claim keeps every key within its limit
    (``concurrency.claim_keyed_slots``); ``key_held`` gets the jobs left waiting on one.
    """
    wanted = {slot: n for slot, n in plan.items() if n > 0}
    if not wanted:
        return []
    if concurrency.any_keys(conn):
        claims = concurrency.claim_keyed_slots(conn, now, wanted, run, named_limits or {}, key_held)
        return sorted(claims, key=lambda c: c.order_key)
    run_id, fence = run if run else (None, 0)
    if is_postgres(conn):
        by_class = any(name is not None for _, name in wanted)
        params = {
            "workspaces": [w for w, _ in wanted],
            "counts": list(wanted.values()),
            "now": now,
            "run_id": run_id,
            "fence": fence,
            "lowest": LOWEST_TIME,
            "max_fence": poison.MAX_FENCE,
        }
        if by_class:
            params["classes"] = [name for _, name in wanted]
        statement = _CLAIM_BY_CLASS_PG if by_class else _CLAIM_PLANNED_PG
        claims = [claim_from(r) for r in conn.execute(statement.columns(*CLAIM_COLUMNS), params)]
    else:
        # SQLite: one writer at a time already (BEGIN IMMEDIATE), so a plain
        # per-workspace claim is as safe and, at embedded scale, as fast.
        claims = []
        guard = still_current("dispatch", run_id, fence) if run_id is not None else None
        for (workspace, name), n in wanted.items():
            candidates = due_in_workspace(conn, workspace, now, n, name)
            claims.extend(claim_ids(conn, candidates, now, guard))
    return sorted(claims, key=lambda c: c.order_key)


def pending_count(conn: Connection, workspace_id: str, limit: int) -> int:
    """PENDING jobs of one workspace, counted up to ``limit``."""
    inner = (
        # run_at, not id: a column of ix_job_workspace_due, so the index can answer.
        select(job.c.run_at)
        .where(job.c.status == JobStatus.PENDING.value, job.c.workspace_id == workspace_id)
        .limit(limit)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())
