"""Which time limits a job kind runs under: its own, or the defaults."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairbeat.tasks.limits import from_message, resolve
from fairbeat.tasks.settings import Settings, SettingsError, load_settings

DEFAULTS = Settings()


def test_the_defaults_leave_a_tenth_of_the_limit_after_the_soft_one() -> None:
    limits = resolve(DEFAULTS)
    assert (limits.hard_s, limits.soft_s) == (1800.0, 1620.0)
    assert limits.send_options() == {"time_limit": 1800.0, "soft_time_limit": 1620.0}


def test_a_kind_with_its_own_hard_limit_takes_a_soft_one_in_proportion() -> None:
    settings = Settings(job_soft_time_limit_s=1000)
    limits = resolve(settings, kind_hard=2)
    assert (limits.hard_s, limits.soft_s) == (2.0, 1.8)
    assert resolve(settings).soft_s == 1000.0


def test_a_kind_soft_limit_past_the_default_hard_one_lifts_it() -> None:
    limits = resolve(DEFAULTS, kind_soft=3600)
    assert limits.soft_s == 3600 and limits.hard_s == pytest.approx(4000)


@pytest.mark.parametrize("junk", [0, -1, math.inf, math.nan, "10", True, None])
def test_an_unusable_task_attribute_is_as_if_unset(junk: object) -> None:
    assert resolve(DEFAULTS, kind_hard=junk, kind_soft=junk) == resolve(DEFAULTS)


@given(
    hard=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e6)),
    soft=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e6)),
)
def test_the_soft_limit_always_comes_first(hard: float | None, soft: float | None) -> None:
    limits = resolve(DEFAULTS, kind_hard=hard, kind_soft=soft)
    assert 0 < limits.soft_s < limits.hard_s
    if hard is not None:
        assert limits.hard_s == hard


def test_a_message_carries_its_limits() -> None:
    assert from_message(None) is None
    assert from_message([None, None]) is None
    sent = from_message([2, 1])
    assert sent is not None and (sent.hard_s, sent.soft_s) == (2.0, 1.0)
    only_hard = from_message([10, None])
    assert only_hard is not None and only_hard.soft_s == 9.0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"job_time_limit_s": "inf"}, "FAIRBEAT_JOB_TIME_LIMIT_S"),
        ({"job_time_limit_s": "0"}, "FAIRBEAT_JOB_TIME_LIMIT_S"),
        ({"job_soft_time_limit_s": "nan"}, "FAIRBEAT_JOB_SOFT_TIME_LIMIT_S"),
        ({"job_time_limit_s": "10", "job_soft_time_limit_s": "10"}, "SOFT_TIME_LIMIT_S"),
    ],
)
def test_bad_limits_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**env)
