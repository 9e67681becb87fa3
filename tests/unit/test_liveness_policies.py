from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.alerts import (
    FIRE,
    QUEUE_AGE_BREACH,
    RESOLVE,
    STALE_RUN,
    Condition,
    alert_actions,
)
from fairbeat.scheduling.health import Observations, figures
from fairbeat.scheduling.jobstate import JobStatus
from fairbeat.scheduling.recovery import RECOVERED_TO_FAILED, recover_running


@given(st.integers(1, 50), st.integers(1, 50))
def test_recovery_uses_up_the_attempt(attempts: int, max_attempts: int) -> None:
    decision = recover_running(attempts=attempts, max_attempts=max_attempts)
    if attempts >= max_attempts:
        assert decision.to_status == JobStatus.FAILED
        assert decision.reason_code == RECOVERED_TO_FAILED
    else:
        assert decision.to_status == JobStatus.PENDING


def test_an_episode_fires_once_and_resolves_once() -> None:
    breached = [Condition(STALE_RUN, True), Condition(QUEUE_AGE_BREACH, False)]
    first = alert_actions(breached, frozenset())
    assert [(a.kind, a.action) for a in first] == [(STALE_RUN, FIRE)]
    assert alert_actions(breached, frozenset({STALE_RUN})) == []  # still breached: quiet
    ended = alert_actions([Condition(STALE_RUN, False)], frozenset({STALE_RUN}))
    assert [(a.kind, a.action) for a in ended] == [(STALE_RUN, RESOLVE)]


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=30))
def test_fires_and_resolves_alternate(history: list[tuple[bool, bool]]) -> None:
    open_kinds: set[str] = set()
    fired = resolved = 0
    for stale, slow in history:
        conditions = [Condition(STALE_RUN, stale), Condition(QUEUE_AGE_BREACH, slow)]
        for action in alert_actions(conditions, frozenset(open_kinds)):
            if action.action == FIRE:
                assert action.kind not in open_kinds
                open_kinds.add(action.kind)
                fired += 1
            else:
                assert action.kind in open_kinds
                open_kinds.remove(action.kind)
                resolved += 1
    assert fired - resolved == len(open_kinds)


def test_figures_from_observations() -> None:
    obs = Observations(
        queue_waits_s=[("a", 1.0)] * 19 + [("b", 400.0)],
        starts_by_workspace={"a": 30, "b": 10},
        finished=40,
        failed=2,
    )
    got = figures(obs, top_n=1)
    assert got.queue_age_p95_s == 1.0
    assert got.queue_age_p95_by_workspace == {"b": 400.0}
    assert got.failure_rate == 0.05
    assert (got.top_workspace, got.top_workspace_share) == ("a", 0.75)


def test_figures_with_nothing_observed() -> None:
    got = figures(Observations([], {}, 0, 0), top_n=5)
    assert got.queue_age_p95_s is None and got.failure_rate is None and got.top_workspace is None
