"""The schedule settings: bounds, and the grace no shorter than the tick interval."""

from __future__ import annotations

import pytest

from fairbeat.beat_schedule import build_schedule
from fairbeat.tasks.settings import SettingsError, load_settings


def test_a_grace_below_the_tick_interval_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="FAIRBEAT_SCHEDULE_GRACE_S must be at least"):
        load_settings(schedule_interval_s=5, schedule_grace_s=2)


def test_an_unknown_missed_policy_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="FAIRBEAT_SCHEDULE_MISSED"):
        load_settings(schedule_missed="sometimes")


def test_beat_fires_the_scheduler_tick_on_the_control_queue() -> None:
    settings = load_settings(schedule_interval_s=2.0)
    entry = build_schedule(settings)["fairbeat.schedule"]
    assert entry["task"] == "fairbeat.schedule" and entry["schedule"] == 2.0
    assert entry["options"]["queue"] == settings.control_queue
