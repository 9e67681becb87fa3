"""Retention cutoffs and durations: pure policy, with hypothesis for the invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.retention import (
    OLDER_THAN_OVERRIDE,
    RETENTION,
    TABLES,
    RetentionPolicy,
    cutoffs,
    evidence_floor,
    parse_duration,
    previous_gate_window_start,
)
from fairbeat.tasks.settings import SettingsError, load_settings

DAY = 86_400.0


def policy(**changes: float) -> RetentionPolicy:
    values: dict[str, float] = {
        "succeeded_s": 7 * DAY,
        "failed_s": 30 * DAY,
        "cancelled_s": 30 * DAY,
        "function_run_s": 2 * DAY,
        "duplicate_event_s": 30 * DAY,
        "gate_decision_s": 90 * DAY,
        "alert_s": 90 * DAY,
        "health_snapshot_s": 7 * DAY,
        "health_window_s": 900.0,
        **changes,
    }
    return RetentionPolicy(gate_window_s=900, **values)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("0", 0),
        ("90", 90),
        ("1.5", 1.5),
        ("15m", 900),
        ("36h", 36 * 3600),
        ("7d", 7 * DAY),
        ("2w", 14 * DAY),
        ("1d12h", 1.5 * DAY),
        (" 7D ", 7 * DAY),
    ],
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "7 days", "-1s", "-5", "1y", "d7", "nan", "inf"])
def test_a_bad_duration_is_one_line_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration") as caught:
        parse_duration(text)
    assert "\n" not in str(caught.value) and repr(text) in str(caught.value)


def test_the_floor_is_the_previous_gate_window_or_the_health_window() -> None:
    now = datetime(2026, 1, 1, 12, 7, tzinfo=UTC)
    assert previous_gate_window_start(now, 900) == datetime(2026, 1, 1, 11, 45, tzinfo=UTC)
    assert evidence_floor(now, 900, 900) == datetime(2026, 1, 1, 11, 45, tzinfo=UTC)
    assert evidence_floor(now, 900, 3600) == datetime(2026, 1, 1, 11, 7, tzinfo=UTC)


def test_retention_applies_per_table_and_an_override_applies_to_all() -> None:
    now = datetime(2026, 1, 1, 12, 7, tzinfo=UTC)
    plan = cutoffs(policy(), now)
    assert plan.reason_code == RETENTION
    assert plan.before["job_succeeded"] == now - timedelta(days=7)
    assert plan.before["function_run"] == now - timedelta(days=2)
    forced = cutoffs(policy(), now, older_than_s=0)
    assert forced.reason_code == OLDER_THAN_OVERRIDE
    assert set(forced.before.values()) == {forced.evidence_floor}
    assert forced.evidence["held_by_floor"] == sorted(TABLES)


retentions = st.floats(min_value=0, max_value=400 * DAY, allow_nan=False)


@given(
    kept=st.lists(retentions, min_size=8, max_size=8),
    gate_window_min=st.sampled_from([1, 5, 15, 30, 60]),
    health_window_s=st.floats(min_value=1, max_value=DAY),
    offset_s=st.integers(min_value=0, max_value=10**9),
    older_than_s=st.one_of(st.none(), retentions),
)
def test_no_cutoff_reaches_into_evidence_still_needed(
    kept: list[float],
    gate_window_min: int,
    health_window_s: float,
    offset_s: int,
    older_than_s: float | None,
) -> None:
    now = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=offset_s)
    fields = [f"{kind}_s" for kind in ("succeeded", "failed", "cancelled", "function_run")]
    fields += [f"{kind}_s" for kind in ("duplicate_event", "gate_decision", "alert")]
    fields += ["health_snapshot_s"]
    p = RetentionPolicy(
        **dict(zip(fields, kept, strict=True)),
        gate_window_s=gate_window_min * 60,
        health_window_s=health_window_s,
    )
    plan = cutoffs(p, now, older_than_s)
    previous_gate = previous_gate_window_start(now, p.gate_window_s)
    for table in TABLES:
        before = plan.before[table]
        # Never inside the previous (or current) gate window, nor the health window
        assert before <= previous_gate
        assert before <= now - timedelta(seconds=health_window_s)
        # Never younger than the retention asked for
        asked = p.kept_s(table) if older_than_s is None else older_than_s
        assert before <= now - timedelta(seconds=asked)


def test_retention_settings_take_durations_and_refuse_bad_ones() -> None:
    assert load_settings(retain_failed_s="30d").retain_failed_s == 30 * DAY
    assert load_settings(retain_failed_s=60).retain_failed_s == 60
    with pytest.raises(SettingsError, match=r"FAIRBEAT_RETAIN_ALERT_S: .*not a duration"):
        load_settings(retain_alert_s="soon")
    with pytest.raises(SettingsError, match="FAIRBEAT_RETAIN_ALERT_S"):
        load_settings(retain_alert_s=-1)
