"""The duplicate-send signal and the window check, as pure policy."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling import gate as g
from tests.unit.test_control_policies import metrics, run_gate, states

REASONS = ["EFFECT_RACED", "EFFECT_SUPPRESSED", "STALE_FENCE", "REPEATED_DELIVERY", "NOT_CLAIMED"]


@given(st.dictionaries(st.sampled_from([*REASONS, "SOMETHING_NEW"]), st.integers(0, 10_000)))
def test_every_event_is_counted_once_and_only_raced_effects_are_sends(
    by_reason: dict[str, int],
) -> None:
    counted = g.classify_duplicates(by_reason)
    assert counted.duplicate_sends == by_reason.get("EFFECT_RACED", 0)
    assert sum(
        (
            counted.duplicate_sends,
            counted.suppressed_effects,
            counted.dropped_deliveries,
            counted.unclassified,
        )
    ) == sum(by_reason.values())


@given(metrics, states, st.integers(0, 10_000), st.integers(0, 10_000))
def test_caught_duplicates_never_change_a_verdict(
    m: g.WindowMetrics, s: g.GateState, suppressed: int, dropped: int
) -> None:
    clean = replace(m, duplicates=0)
    noisy = replace(clean, suppressed_effects=suppressed, dropped_deliveries=dropped)
    v = run_gate(noisy, s)
    assert v.reason_code == run_gate(clean, s).reason_code
    assert v.reason_code != g.DEMOTED_DUPLICATE_SEND
    assert v.evidence["suppressed_effects"] == suppressed


@given(
    start=st.integers(0, 10**10),
    now=st.integers(0, 10**10),
    window=st.sampled_from([60, 300, 900, 1800, 3600]),
)
def test_only_a_finished_aligned_window_passes(start: int, now: int, window: int) -> None:
    check = g.check_window(start_s=start, window_s=window, now_s=now)
    assert check.ok == (start + window <= now and start % window == 0)
    if start > now:
        assert check.reason_code == g.WINDOW_IN_FUTURE


def test_each_refusal_has_its_reason() -> None:
    assert g.check_window(start_s=900, window_s=900, now_s=1000).reason_code == (
        g.WINDOW_NOT_FINISHED
    )
    assert g.check_window(start_s=950, window_s=900, now_s=5000).reason_code == (
        g.WINDOW_NOT_ALIGNED
    )
    assert g.check_window(start_s=900, window_s=900, now_s=1800).ok
