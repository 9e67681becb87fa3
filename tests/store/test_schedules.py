"""Schedules on both databases: the API, and the scheduler tick's one job per slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select

from fairbeat.scheduling.schedules import CATCH_UP_ONCE, SKIP, occurrence_key
from fairbeat.store import schedules as store
from fairbeat.store.models import job_table, schedule_table
from fairbeat.store.schedules import NewSchedule, ScheduleRow
from fairbeat.tasks import schedules
from fairbeat.tasks.api import enqueue
from fairbeat.tasks.errors import EnqueueError
from fairbeat.tasks.runtime import runtime_of
from fairbeat.tasks.schedule import (
    BACKLOG_FULL,
    BROKEN,
    FIRED,
    LOST_RACE,
    REFUSED,
    fire,
    run_schedule_tick,
)
from tests.conftest import AppFactory


def jobs(engine: Engine, workspace_id: str = "acme") -> list[dict[str, Any]]:
    query = (
        select(job_table).where(job_table.c.workspace_id == workspace_id).order_by(job_table.c.id)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def row_of(engine: Engine, schedule_id: int) -> ScheduleRow:
    with engine.connect() as conn:
        found = store.get(conn, schedule_id)
    assert found is not None
    return found


def test_add_stores_the_first_slot_after_now(app: Celery) -> None:
    before = datetime.now(UTC)
    row = schedules.add("acme", "test.send", {"tag": "a"}, every_s=60, app=app)
    assert row.every_s == 60 and row.cron is None and row.missed == CATCH_UP_ONCE
    assert row.next_slot is not None and before < row.next_slot <= before + timedelta(seconds=61)
    assert row.next_slot.second == 0 and row.created_by == "python"
    cron = schedules.add(
        "acme", "test.noop", cron="0 6 * * *", timezone="Europe/Berlin", missed=SKIP, app=app
    )
    assert cron.next_slot is not None and cron.next_slot.hour in (4, 5)  # 06:00 Berlin in UTC
    assert [r.id for r in schedules.listing(app=app)] == [row.id, cron.id]
    assert schedules.listing("other", app=app) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"every_s": 0}, "every_s"),
        ({"every_s": -5}, "every_s"),
        ({"every_s": 1.5}, "every_s"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * *", "every_s": 5}, "cron"),
        ({}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Base"}, "timezone"),
        ({"every_s": 5, "missed": "sometimes"}, "missed"),
        ({"every_s": 5, "kind": "no.such"}, "kind"),
        ({"every_s": 5, "workspace_id": ""}, "workspace_id"),
        ({"every_s": 5, "payload": {"nope": 1}}, "payload"),
    ],
)
def test_bad_input_names_the_argument_and_writes_nothing(
    app: Celery, engine: Engine, kwargs: dict[str, Any], field: str
) -> None:
    args = {"workspace_id": "acme", "kind": "test.send", "payload": {"tag": "a"}, **kwargs}
    with pytest.raises((schedules.BadSchedule, EnqueueError)) as caught:
        schedules.add(app=app, **args)
    assert getattr(caught.value, "field", None) == field
    with engine.connect() as conn:
        assert conn.execute(select(schedule_table)).first() is None


def test_pause_resume_and_remove(app: Celery) -> None:
    row = schedules.add("acme", "test.noop", every_s=5, app=app)
    assert schedules.pause(row.id, app=app).paused
    assert not schedules.resume(row.id, app=app).paused
    schedules.remove(row.id, app=app)
    with pytest.raises(schedules.BadSchedule, match="schedule_id: no schedule"):
        schedules.pause(row.id, app=app)
    with pytest.raises(schedules.BadSchedule, match="schedule_id: no schedule"):
        schedules.remove(row.id, app=app)


def test_a_tick_enqueues_each_due_slot_once(app: Celery, engine: Engine) -> None:
    # Given an every-second schedule, when a tick comes 2.5 s after its first slot
    row = schedules.add("acme", "test.send", {"tag": "s"}, every_s=1, app=app)
    assert row.next_slot is not None
    now = row.next_slot + timedelta(seconds=2.5)
    report = run_schedule_tick(app, now=now)
    # Then the three slots each have a job, keyed by schedule and slot
    slots = [row.next_slot + timedelta(seconds=s) for s in range(3)]
    assert report["enqueued"] == 3 and report["outcomes"] == {FIRED: 1}
    found = jobs(engine)
    assert [j["dedupe_key"] for j in found] == [occurrence_key(row.id, s) for s in slots]
    assert all(j["kind"] == "test.send" and j["payload"] == {"tag": "s"} for j in found)
    moved = row_of(engine, row.id)
    assert moved.next_slot == slots[-1] + timedelta(seconds=1) and moved.last_slot == slots[-1]
    assert moved.last_job_id == found[-1]["id"]
    # And a second tick at the same instant has nothing to do
    assert run_schedule_tick(app, now=now)["due"] == 0
    assert len(jobs(engine)) == 3


def test_a_tick_with_a_stale_view_changes_nothing(app: Celery, engine: Engine) -> None:
    # Two beats: both read the schedule, one fires first; the other must not.
    row = schedules.add("acme", "test.noop", every_s=1, app=app)
    assert row.next_slot is not None
    rt = runtime_of(app)
    now = row.next_slot + timedelta(seconds=1.5)
    assert fire(app, rt, row, now).code == FIRED
    late = fire(app, rt, row, now + timedelta(seconds=1))
    assert late.code == LOST_RACE and late.job_ids == ()
    assert len(jobs(engine)) == 2


def race(app: Celery, now: datetime, ticks: int) -> list[dict[str, Any]]:
    """``ticks`` scheduler ticks at once, as two or more beats would fire them."""
    barrier = threading.Barrier(ticks)
    reports: list[dict[str, Any]] = []

    def tick() -> None:
        barrier.wait()
        reports.append(run_schedule_tick(app, now=now))

    threads = [threading.Thread(target=tick) for _ in range(ticks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return reports


def test_ticks_racing_in_threads_yield_one_job_per_slot(app: Celery, engine: Engine) -> None:
    row = schedules.add("acme", "test.noop", every_s=1, app=app)
    assert row.next_slot is not None
    start = row.next_slot
    for step in range(1, 6):
        reports = race(app, start + timedelta(seconds=step - 0.5), ticks=3)
        assert sum(r["outcomes"].get(FIRED, 0) for r in reports) == 1, reports
    keys = [j["dedupe_key"] for j in jobs(engine)]
    assert keys == [occurrence_key(row.id, start + timedelta(seconds=s)) for s in range(5)]


@pytest.mark.parametrize(("missed", "expected"), [(SKIP, 1), (CATCH_UP_ONCE, 2)])
def test_after_downtime_missed_slots_follow_the_policy(
    app: Celery, engine: Engine, missed: str, expected: int
) -> None:
    # Given an every-minute schedule whose ticks stopped for three hours
    row = schedules.add("acme", "test.noop", every_s=60, missed=missed, app=app)
    assert row.next_slot is not None
    now = row.next_slot + timedelta(hours=3, seconds=30)
    run_schedule_tick(app, now=now)
    # Then the on-time slot (30 s ago) has its job, and the 180 missed ones
    # none (skip) or one together (catch_up_once), keyed by the latest of them
    keys = [j["dedupe_key"] for j in jobs(engine)]
    on_time = occurrence_key(row.id, row.next_slot + timedelta(hours=3))
    latest_missed = occurrence_key(row.id, row.next_slot + timedelta(hours=3, minutes=-1))
    assert keys == ([on_time] if missed == SKIP else [latest_missed, on_time])
    assert len(keys) == expected
    assert row_of(engine, row.id).next_slot == row.next_slot + timedelta(hours=3, minutes=1)


def test_a_paused_schedule_waits_and_resumes_by_its_policy(app: Celery, engine: Engine) -> None:
    row = schedules.add("acme", "test.noop", every_s=60, missed=SKIP, app=app)
    assert row.next_slot is not None
    schedules.pause(row.id, app=app)
    now = row.next_slot + timedelta(minutes=10, seconds=5)
    assert run_schedule_tick(app, now=now)["due"] == 0
    schedules.resume(row.id, app=app)
    run_schedule_tick(app, now=now)
    assert [j["dedupe_key"] for j in jobs(engine)] == [
        occurrence_key(row.id, row.next_slot + timedelta(minutes=10))
    ]


def test_a_full_backlog_holds_the_slot(make_app: AppFactory, engine: Engine) -> None:
    app = make_app(pending_limit=1)
    enqueue("acme", "test.noop", {}, app=app)
    row = schedules.add("acme", "test.noop", every_s=1, app=app)
    assert row.next_slot is not None
    report = run_schedule_tick(app, now=row.next_slot)
    assert report["outcomes"] == {BACKLOG_FULL: 1} and len(jobs(engine)) == 1
    assert row_of(engine, row.id).next_slot == row.next_slot
    # Meanwhile another workspace's schedule fires as usual
    other = schedules.add("beta", "test.noop", every_s=1, app=app)
    assert other.next_slot is not None
    run_schedule_tick(app, now=other.next_slot)
    assert len(jobs(engine, "beta")) == 1


def test_a_refused_job_moves_the_schedule_on_and_keeps_the_error(
    app: Celery, engine: Engine
) -> None:
    # Given a schedule whose kind is no longer registered (its handler was removed)
    now = datetime.now(UTC).replace(microsecond=0)
    new = NewSchedule("acme", "gone.kind", {}, None, 1, "UTC", SKIP, now, now, "test")
    with engine.begin() as conn:
        row = store.insert(conn, new)
    report = run_schedule_tick(app, now=now)
    assert report["outcomes"] == {REFUSED: 1} and jobs(engine) == []
    moved = row_of(engine, row.id)
    assert moved.next_slot == now + timedelta(seconds=1)
    assert moved.last_error is not None and "no task named 'gone.kind'" in moved.last_error


def test_a_broken_row_does_not_stop_the_other_schedules(app: Celery, engine: Engine) -> None:
    # Given a row whose zone the tz database no longer has (written around the API)
    now = datetime.now(UTC).replace(microsecond=0)
    broken = NewSchedule(
        "acme", "test.noop", {}, "* * * * *", None, "Gone/Zone", SKIP, now, now, "t"
    )
    with engine.begin() as conn:
        store.insert(conn, broken)
    good = schedules.add("beta", "test.noop", every_s=1, app=app)
    assert good.next_slot is not None
    # When a tick finds both due, then the good one fires and the broken one is counted
    report = run_schedule_tick(app, now=max(now, good.next_slot))
    assert report["outcomes"] == {BROKEN: 1, FIRED: 1}
    assert len(jobs(engine, "beta")) == 1 and jobs(engine) == []
