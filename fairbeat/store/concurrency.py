"""Concurrency keys in SQL: the key rows of a job, the in-flight count per key,
and the claim that keeps every key within its limit.

The claim reads the in-flight counts and claims in one transaction, under a
lock no other keyed claim can hold at the same time (PostgreSQL: a
transaction-scoped advisory lock; SQLite: the one writer of BEGIN IMMEDIATE).
Between the count and the claim, in-flight jobs can only finish, never start,
so the count the admission used is at least the true one and no key can go
over its limit. The dispatch lease and the run fence already keep a second
dispatcher out; the lock also covers any other claimer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, text, tuple_
from sqlalchemy.engine import Connection

from fairbeat.scheduling.concurrency import (
    KeyedCandidate,
    ScopedKey,
    admit,
    full_keys,
    scope_of,
)
from fairbeat.scheduling.jobstate import IN_FLIGHT
from fairbeat.store.claiming import Claim, claim_ids, due_in_workspace
from fairbeat.store.db import is_postgres
from fairbeat.store.jobs import job
from fairbeat.store.models import job_concurrency_key_table
from fairbeat.store.runs import still_current

jck = job_concurrency_key_table

# A claim looks this many times further than its plan, so that jobs waiting on
# a full key do not hide the ones behind them for a whole tick.
LOOKAHEAD = 4
# Any fixed number: the advisory lock serialises keyed claims only.
_CLAIM_LOCK = 0x6661697262656174  # "fairbeat"


def add_keys(conn: Connection, job_id: int, workspace_id: str, keys: Mapping[str, int]) -> None:
    """The key rows of a new job: key -> the limit it was enqueued with.

    Rows already under the id are left over from a deleted job (SQLite reuses
    the highest id once its row is gone): they are not this job's keys.
    """
    if keys:
        conn.execute(delete(jck).where(jck.c.job_id == job_id))
        rows = [
            {"job_id": job_id, "key": k, "scope": scope_of(workspace_id, k), "max_in_flight": n}
            for k, n in keys.items()
        ]
        conn.execute(insert(jck), rows)


def any_keys(conn: Connection) -> bool:
    """Whether any job ever carried a key: until then claims take the plain path."""
    return conn.execute(select(jck.c.job_id).limit(1)).first() is not None


def in_flight_by_key(conn: Connection) -> tuple[dict[ScopedKey, int], dict[ScopedKey, int]]:
    """(scope, key) -> jobs CLAIMED or RUNNING, and the smallest limit among them."""
    rows = conn.execute(
        select(jck.c.scope, jck.c.key, func.count(), func.min(jck.c.max_in_flight))
        .join(job, job.c.id == jck.c.job_id)
        .where(job.c.status.in_([s.value for s in IN_FLIGHT]))
        .group_by(jck.c.scope, jck.c.key)
    ).all()
    counts = {(r[0], r[1]): int(r[2]) for r in rows}
    limits = {(r[0], r[1]): int(r[3]) for r in rows}
    return counts, limits


def _candidates(
    conn: Connection,
    now: datetime,
    slot: tuple[str, str | None],
    n: int,
    full: frozenset[ScopedKey],
) -> list[int]:
    workspace, priority_class = slot
    query = due_in_workspace(conn, workspace, now, n * LOOKAHEAD, priority_class)
    if full:
        blocked = exists().where(
            jck.c.job_id == job.c.id, tuple_(jck.c.scope, jck.c.key).in_(sorted(full))
        )
        query = query.where(~blocked)
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    return [int(i) for i in conn.execute(query).scalars()]


def _keys_of(conn: Connection, ids: Sequence[int]) -> dict[int, dict[ScopedKey, int]]:
    out: dict[int, dict[ScopedKey, int]] = {}
    if ids:
        rows = conn.execute(
            select(jck.c.job_id, jck.c.scope, jck.c.key, jck.c.max_in_flight).where(
                jck.c.job_id.in_(list(ids))
            )
        )
        for r in rows:
            out.setdefault(int(r.job_id), {})[(r.scope, r.key)] = int(r.max_in_flight)
    return out


def claim_keyed_slots(
    conn: Connection,
    now: datetime,
    wanted: Mapping[tuple[str, str | None], int],
    run: tuple[int, int] | None,
    named: Mapping[str, int],
    held: dict[str, int] | None = None,
) -> list[Claim]:
    """Claim ``wanted[(workspace, stored priority class)]`` due jobs each (a class
    of None: of any class), skipping any whose key is full; ``held`` gets, per
    workspace, the planned jobs left waiting as KEY_LIMIT. Admission keeps each
    slot to its own share, so a class's budget is not spent on another class's jobs."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLAIM_LOCK})
    counts, limits = in_flight_by_key(conn)
    full = full_keys(counts, limits, named)
    candidates: list[KeyedCandidate] = []
    short: set[str] = set()  # fewer candidates than planned: the rest wait on full keys
    # admit() shares out per label: one label per slot.
    labels = {slot: str(index) for index, slot in enumerate(wanted)}
    for slot, n in wanted.items():
        ids = _candidates(conn, now, slot, n, full)
        if full and len(ids) < n:
            short.add(labels[slot])
        keys = _keys_of(conn, ids)
        candidates.extend(KeyedCandidate(i, labels[slot], keys.get(i, {})) for i in ids)
    by_label = {labels[slot]: n for slot, n in wanted.items()}
    admission = admit(candidates, by_label, counts, named)
    if not admission.admitted:
        claims: list[Claim] = []
    else:
        run_id, fence = run if run else (None, 0)
        guard: Any = still_current("dispatch", run_id, fence) if run_id is not None else None
        chosen = select(job.c.id).where(job.c.id.in_(list(admission.admitted)))
        claims = claim_ids(conn, chosen, now, guard)
    if held is not None:
        label_of = {c.job_id: c.workspace_id for c in candidates}
        got = {label: 0 for label in by_label}
        for c in claims:
            got[label_of[c.job_id]] += 1
        for slot, label in labels.items():
            n = by_label[label]
            if (admission.held.get(label) or label in short) and got[label] < n:
                held[slot[0]] = held.get(slot[0], 0) + n - got[label]
    return claims
