"""Per-workspace schedules, for Python callers: add, list, pause, resume, remove.

::

    from fairbeat import schedules

    schedules.add("acme", "report.daily", {"format": "pdf"}, cron="0 6 * * *",
                  timezone="Europe/Berlin")
    schedules.add("acme", "sync.crm", every_s=300, missed="skip")

The scheduler tick (``fairbeat.schedule``, fired by beat) enqueues each due
occurrence through ``enqueue()``, so the workspace's quota, fairness and
pending limit apply to scheduled jobs as to any other. Every check runs
before anything is written: a refused schedule leaves no row.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from fairbeat.scheduling.schedules import MISSED_POLICIES, EverySeries, SlotSeries, first_slot
from fairbeat.store import schedules as store
from fairbeat.store.schedules import NewSchedule, ScheduleRow
from fairbeat.tasks.api import _check_kind, _check_payload, _check_workspace
from fairbeat.tasks.cron import BadSchedule, cron_series, parse_timezone
from fairbeat.tasks.runtime import Runtime, runtime_of

__all__ = ["BadSchedule", "ScheduleRow", "add", "get", "listing", "pause", "remove", "resume"]

# A bound that keeps slot arithmetic and dedupe keys sane: ten years.
MAX_EVERY_S = 10 * 365 * 86400


def _runtime(app: Celery | None) -> tuple[Celery, Runtime]:
    if app is None:
        from fairbeat.tasks.application import default_app

        app = default_app()
    return app, runtime_of(app)


def _check_every(every_s: Any) -> int:
    if isinstance(every_s, bool) or not isinstance(every_s, int):
        raise BadSchedule("every_s", f"must be a whole number of seconds, got {every_s!r}")
    if not 1 <= every_s <= MAX_EVERY_S:
        raise BadSchedule("every_s", f"must be from 1 to {MAX_EVERY_S} seconds, got {every_s}")
    return every_s


def _series(cron: str | None, every_s: int | None, timezone: str, rt: Runtime) -> SlotSeries:
    if (cron is None) == (every_s is None):
        raise BadSchedule("cron", "give exactly one of cron (an expression) and every_s (seconds)")
    if cron is not None:
        return cron_series(cron, timezone, rt.now())
    parse_timezone(timezone)
    return EverySeries(_check_every(every_s))


def add(
    workspace_id: str,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    cron: str | None = None,
    every_s: int | None = None,
    timezone: str = "UTC",
    missed: str | None = None,
    who: str = "python",
    app: Celery | None = None,
) -> ScheduleRow:
    """Add a schedule of ``kind`` for ``workspace_id``: on ``cron``, or every ``every_s`` seconds.

    ``missed`` (``skip`` or ``catch_up_once``; default FAIRBEAT_SCHEDULE_MISSED)
    says what becomes of slots missed while nothing ran. Raises
    ``BadSchedule`` or ``EnqueueError``, naming the argument.
    """
    app, rt = _runtime(app)
    series = _series(cron, every_s, timezone, rt)
    policy = rt.settings.schedule_missed if missed is None else missed
    if policy not in MISSED_POLICIES:
        raise BadSchedule("missed", f"must be one of {', '.join(MISSED_POLICIES)}, got {policy!r}")
    body = _check_payload({} if payload is None else payload, rt.settings.payload_max_bytes)
    now = rt.now()
    new = NewSchedule(
        workspace_id=_check_workspace(workspace_id),
        kind=_check_kind(app, kind, body),
        payload=body,
        cron=None if cron is None else cron.strip(),
        every_s=every_s,
        timezone=timezone,
        missed=policy,
        next_slot=first_slot(series, now),
        created_at=now,
        created_by=who[:200] or "python",
    )
    with rt.engine.begin() as conn:
        return store.insert(conn, new)


def get(schedule_id: int, *, app: Celery | None = None) -> ScheduleRow:
    _, rt = _runtime(app)
    with rt.engine.connect() as conn:
        return _found(store.get(conn, schedule_id), schedule_id)


def listing(workspace_id: str | None = None, *, app: Celery | None = None) -> list[ScheduleRow]:
    """Every schedule, or one workspace's, oldest first."""
    _, rt = _runtime(app)
    with rt.engine.connect() as conn:
        return store.listing(conn, workspace_id)


def pause(schedule_id: int, *, app: Celery | None = None) -> ScheduleRow:
    """Stop enqueueing; slots that pass while paused are missed (see ``missed``)."""
    return _set_paused(schedule_id, True, app)


def resume(schedule_id: int, *, app: Celery | None = None) -> ScheduleRow:
    """Enqueue again; the slots missed while paused follow the schedule's ``missed`` policy."""
    return _set_paused(schedule_id, False, app)


def remove(schedule_id: int, *, app: Celery | None = None) -> None:
    """Delete a schedule. Jobs it already enqueued stay."""
    _, rt = _runtime(app)
    with rt.engine.begin() as conn:
        if not store.remove(conn, schedule_id):
            raise BadSchedule(
                "schedule_id", f"no schedule {schedule_id}; see `fairbeat schedule list`"
            )


def _set_paused(schedule_id: int, paused: bool, app: Celery | None) -> ScheduleRow:
    _, rt = _runtime(app)
    with rt.engine.begin() as conn:
        return _found(store.set_paused(conn, schedule_id, paused), schedule_id)


def _found(row: ScheduleRow | None, schedule_id: int) -> ScheduleRow:
    if row is None:
        raise BadSchedule("schedule_id", f"no schedule {schedule_id}; see `fairbeat schedule list`")
    return row
