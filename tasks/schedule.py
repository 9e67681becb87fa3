"""``fairbeat.schedule``: the scheduler tick, fired by beat every FAIRBEAT_SCHEDULE_INTERVAL_S.

For each unpaused schedule whose next slot has come, ``plan_slots`` says
which occurrences to enqueue and where the schedule goes on from. One
transaction per schedule enqueues them through ``enqueue()`` (so quotas,
fairness and the pending limit apply), each with the dedupe key of its
schedule and slot, and then advances the schedule only if its next slot is
still the one the plan was made from. Of two ticks at once (two beats), one
advances and commits; the other's advance matches no row and its
transaction is rolled back, so each slot yields one job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery, Task, shared_task
from sqlalchemy.orm import Session

from fairbeat.scheduling.schedules import ON_TIME, SlotPlan, occurrence_key, plan_slots
from fairbeat.store import schedules as store
from fairbeat.store.schedules import Advance, ScheduleRow
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.cron import BadSchedule, series_for
from fairbeat.tasks.errors import EnqueueError, WorkspaceBacklogFull
from fairbeat.tasks.runtime import Runtime, runtime_of

log = logging.getLogger("fairbeat.schedule")

# Schedules looked at per tick; the rest are still due at the next one.
DUE_BATCH = 500

# Outcomes of one schedule in one tick, counted in the tick's report.
FIRED = "FIRED"  # its occurrences were enqueued and it moved on
LOST_RACE = "LOST_RACE"  # another tick moved it first; this one changed nothing
BACKLOG_FULL = "BACKLOG_FULL"  # the workspace is at its pending limit: the slots wait
REFUSED = "REFUSED"  # enqueue refused the job (say, its kind is gone): moved on, error kept
BROKEN = "BROKEN"  # the row's cron expression or zone cannot be read: left as it is


@dataclass(frozen=True)
class Outcome:
    code: str
    plan: SlotPlan
    job_ids: tuple[int, ...] = ()
    error: str | None = None


class _LostRace(Exception):
    """Another tick advanced the schedule first."""


def run_schedule_tick(app: Celery, now: datetime | None = None) -> dict[str, Any]:
    """One scheduler tick at ``now`` (the clock, read once, if not given)."""
    rt = runtime_of(app)
    now = rt.now() if now is None else now
    with rt.engine.connect() as conn:
        rows = store.due(conn, now, DUE_BATCH)
    report: dict[str, Any] = {"due": len(rows), "enqueued": 0, "outcomes": {}}
    for row in rows:
        try:
            outcome = fire(app, rt, row, now)
        except BadSchedule as exc:
            # A row the cron library cannot read (say, its zone left the tz
            # database) must not stop the other schedules: counted, logged.
            report["outcomes"][BROKEN] = report["outcomes"].get(BROKEN, 0) + 1
            log.error("schedule %s is broken: %s", row.id, exc, extra=_broken(row, str(exc)))
            continue
        report["outcomes"][outcome.code] = report["outcomes"].get(outcome.code, 0) + 1
        report["enqueued"] += len(outcome.job_ids)
        _log(row, outcome)
    if rows:
        log.debug("schedule tick", extra={"action": "schedule.tick", **report})
    return report


def fire(app: Celery, rt: Runtime, row: ScheduleRow, now: datetime) -> Outcome:
    """Enqueue a due schedule's occurrences and advance it, all or nothing."""
    assert row.next_slot is not None  # the due scan takes only schedules with one
    plan = plan_slots(
        series_for(row.cron, row.every_s, row.timezone),
        next_slot=row.next_slot,
        now=now,
        grace_s=rt.settings.schedule_grace_s,
        missed=row.missed,
    )
    try:
        with Session(rt.engine) as session, session.begin():
            job_ids = tuple(
                enqueue(
                    row.workspace_id,
                    row.kind,
                    row.payload,
                    dedupe_key=occurrence_key(row.id, occurrence.slot),
                    session=session,
                    app=app,
                ).job_id
                for occurrence in plan.occurrences
            )
            step = _advance(row, plan, job_ids[-1] if job_ids else None, None)
            if not store.advance(session.connection(), step):
                raise _LostRace  # rolls back this schedule's enqueues
    except _LostRace:
        return Outcome(LOST_RACE, plan)
    except WorkspaceBacklogFull as exc:
        return Outcome(BACKLOG_FULL, plan, error=str(exc))
    except EnqueueError as exc:
        return _refused(rt, row, plan, str(exc))
    return Outcome(FIRED, plan, job_ids)


def _refused(rt: Runtime, row: ScheduleRow, plan: SlotPlan, error: str) -> Outcome:
    # A refusal repeats at every slot until someone fixes the schedule, so the
    # slots move on (no job) with the error kept on the row, not retried each tick.
    with rt.engine.begin() as conn:
        moved = store.advance(conn, _advance(row, plan, None, error))
    return Outcome(REFUSED if moved else LOST_RACE, plan, error=error)


def _advance(row: ScheduleRow, plan: SlotPlan, job_id: int | None, error: str | None) -> Advance:
    assert row.next_slot is not None
    return Advance(row.id, row.next_slot, plan.next_slot, plan.last_slot, job_id, error)


def _broken(row: ScheduleRow, error: str) -> dict[str, Any]:
    return {
        "action": "schedule.not_fired",
        "schedule_id": row.id,
        "workspace_id": row.workspace_id,
        "outcome": BROKEN,
        "error": error,
    }


def _log(row: ScheduleRow, outcome: Outcome) -> None:
    extra = {
        "action": "schedule.fired" if outcome.code == FIRED else "schedule.not_fired",
        "schedule_id": row.id,
        "workspace_id": row.workspace_id,
        "kind": row.kind,
        "outcome": outcome.code,
        "reason_code": outcome.plan.reason_code,
        "job_ids": list(outcome.job_ids),
        "evidence": dict(outcome.plan.evidence),
    }
    if outcome.error is not None:
        log.warning("schedule %s not fired: %s", row.id, outcome.error, extra=extra)
    elif outcome.code == FIRED and outcome.plan.reason_code != ON_TIME:
        log.info("schedule %s: %s", row.id, outcome.plan.reason_code, extra=extra)
    else:
        log.debug("schedule %s: %s", row.id, outcome.code, extra=extra)


@shared_task(name="fairbeat.schedule", bind=True)
def schedule(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    return run_schedule_tick(self.app)
