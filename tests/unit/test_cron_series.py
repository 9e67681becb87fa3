"""tasks/cron.py: cron slots from cronsim, in the schedule's zone, out as UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from fairbeat.scheduling.schedules import CATCH_UP_ONCE, plan_slots
from fairbeat.tasks.cron import BadSchedule, cron_series, parse_timezone

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)


def test_slots_are_strictly_after_and_before_and_in_utc() -> None:
    series = cron_series("*/5 * * * *", "UTC", NOW)
    assert series.after(NOW) == datetime(2026, 12, 1, 12, 5, tzinfo=UTC)
    assert series.before(NOW) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    at = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)
    assert series.after(at) == at + timedelta(minutes=5)
    assert series.before(at) == at - timedelta(minutes=5)
    assert series.after(NOW).tzinfo == UTC  # type: ignore[union-attr]


def test_the_expression_is_read_in_the_schedule_zone() -> None:
    # 06:00 in Berlin is 05:00 UTC in winter.
    series = cron_series("0 6 * * *", "Europe/Berlin", NOW)
    assert series.after(NOW) == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def test_a_slot_in_the_spring_forward_gap_still_fires_once() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28; Debian cron runs it at 03:00.
    series = cron_series("30 2 * * *", "Europe/Berlin", NOW)
    start = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    slots = [series.after(start)]
    for _ in range(2):
        slots.append(series.after(slots[-1]))  # type: ignore[arg-type]
    assert slots == [
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC),  # 03:00 CEST
        datetime(2027, 3, 29, 0, 30, tzinfo=UTC),
        datetime(2027, 3, 30, 0, 30, tzinfo=UTC),
    ]


def test_six_fields_are_seconds_first() -> None:
    series = cron_series("*/10 * * * * *", "UTC", NOW)
    assert series.after(NOW) == NOW + timedelta(seconds=10)


def test_a_day_of_cron_slots_missed_is_caught_up_once() -> None:
    series = cron_series("0 * * * *", "UTC", NOW)
    plan = plan_slots(
        series,
        next_slot=datetime(2026, 11, 30, 13, 0, tzinfo=UTC),
        now=NOW,
        grace_s=60,
        missed=CATCH_UP_ONCE,
    )
    # 13:00 yesterday up to 11:00 today were missed (one job, keyed 11:00);
    # 12:00, thirty seconds ago, is on time.
    assert [(o.slot, o.catch_up) for o in plan.occurrences] == [
        (datetime(2026, 12, 1, 11, 0, tzinfo=UTC), True),
        (datetime(2026, 12, 1, 12, 0, tzinfo=UTC), False),
    ]
    assert plan.next_slot == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "zone", "message"),
    [
        ("61 * * * *", "UTC", "cron: bad cron expression '61 * * * *' (Bad minute)"),
        ("@daily", "UTC", "cron: bad cron expression '@daily' (Wrong number of fields)"),
        ("0 0 30 2 *", "UTC", "cron: bad cron expression"),
        ("", "UTC", "cron: must be a cron expression"),
        ("* * * * *", "Mars/Base", "timezone: unknown time zone 'Mars/Base'"),
        ("* * * * *", "../etc", "timezone: unknown time zone"),
    ],
)
def test_bad_input_names_the_argument(expr: str, zone: str, message: str) -> None:
    with pytest.raises(BadSchedule, match=re.escape(message)):
        cron_series(expr, zone, NOW)


def test_a_zone_is_an_iana_name() -> None:
    assert str(parse_timezone("America/New_York")) == "America/New_York"
