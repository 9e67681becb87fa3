"""Per-workspace schedules: rows, the due scan, and the conditional advance.

Functions take a Connection; the caller owns the transaction. The advance is
conditional on the next slot the caller read, so of two scheduler ticks that
race on a schedule exactly one moves it on; the other's transaction changes
nothing and is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, RowMapping

from fairbeat.store.models import schedule_table

sched = schedule_table


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    cron: str | None
    every_s: int | None
    timezone: str
    missed: str
    paused: bool
    next_slot: datetime | None
    last_slot: datetime | None
    last_job_id: int | None
    last_error: str | None
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _row(mapping: RowMapping) -> ScheduleRow:
    return ScheduleRow(**{name: mapping[name] for name in ScheduleRow.__dataclass_fields__})


@dataclass(frozen=True)
class NewSchedule:
    workspace_id: str
    kind: str
    payload: dict[str, Any]
    cron: str | None
    every_s: int | None
    timezone: str
    missed: str
    next_slot: datetime | None
    created_at: datetime
    created_by: str


def insert(conn: Connection, new: NewSchedule) -> ScheduleRow:
    values = {name: getattr(new, name) for name in NewSchedule.__dataclass_fields__}
    schedule_id = conn.execute(sched.insert().values(values).returning(sched.c.id)).scalar_one()
    found = get(conn, int(schedule_id))
    assert found is not None  # just inserted, in this transaction
    return found


def get(conn: Connection, schedule_id: int) -> ScheduleRow | None:
    row = conn.execute(select(sched).where(sched.c.id == schedule_id)).mappings().one_or_none()
    return None if row is None else _row(row)


def listing(conn: Connection, workspace_id: str | None = None) -> list[ScheduleRow]:
    """Every schedule, or one workspace's, oldest first."""
    query = select(sched).order_by(sched.c.id)
    if workspace_id is not None:
        query = query.where(sched.c.workspace_id == workspace_id)
    return [_row(r) for r in conn.execute(query).mappings()]


def set_paused(conn: Connection, schedule_id: int, paused: bool) -> ScheduleRow | None:
    conn.execute(update(sched).where(sched.c.id == schedule_id).values(paused=paused))
    return get(conn, schedule_id)


def remove(conn: Connection, schedule_id: int) -> bool:
    return conn.execute(delete(sched).where(sched.c.id == schedule_id)).rowcount == 1


def due(conn: Connection, now: datetime, limit: int) -> list[ScheduleRow]:
    """Unpaused schedules whose next slot has come, the most overdue first."""
    query = (
        select(sched)
        .where(sched.c.paused.is_(False), sched.c.next_slot <= now)
        .order_by(sched.c.next_slot, sched.c.id)
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(query).mappings()]


@dataclass(frozen=True)
class Advance:
    schedule_id: int
    expected_next: datetime  # the next slot the plan was made from
    next_slot: datetime | None
    last_slot: datetime | None
    last_job_id: int | None
    last_error: str | None


def advance(conn: Connection, step: Advance) -> bool:
    """Move a schedule on, if its next slot is still the one the plan was made from.

    False: another tick moved it first, or it was paused or removed meanwhile.
    """
    values: dict[str, Any] = {"next_slot": step.next_slot, "last_error": step.last_error}
    if step.last_slot is not None:
        values["last_slot"] = step.last_slot
    if step.last_job_id is not None:
        values["last_job_id"] = step.last_job_id
    result = conn.execute(
        update(sched)
        .where(
            sched.c.id == step.schedule_id,
            sched.c.next_slot == step.expected_next,
            sched.c.paused.is_(False),
        )
        .values(values)
    )
    return result.rowcount == 1
