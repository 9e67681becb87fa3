from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.retry import (
    MAX_ATTEMPTS_REACHED,
    RETRY_BACKOFF,
    RetryPolicy,
    decide_retry,
    jitter_fraction,
)

policies = st.builds(
    RetryPolicy,
    base_s=st.floats(min_value=0.001, max_value=600),
    cap_s=st.floats(min_value=0.001, max_value=86_400),
)


@given(
    job_id=st.integers(min_value=1, max_value=2**62),
    attempt=st.integers(min_value=1, max_value=200),
    extra=st.integers(min_value=1, max_value=50),
    policy=policies,
)
def test_a_retry_waits_between_half_and_all_of_the_capped_exponential(
    job_id: int, attempt: int, extra: int, policy: RetryPolicy
) -> None:
    decision = decide_retry(
        job_id=job_id, attempt=attempt, max_attempts=attempt + extra, policy=policy
    )
    ceiling = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
    assert decision.retry and decision.reason_code == RETRY_BACKOFF
    assert ceiling / 2 <= decision.delay_s <= ceiling
    assert decision.delay_s <= policy.cap_s


@given(
    job_id=st.integers(min_value=1),
    attempt=st.integers(min_value=1, max_value=100),
    policy=policies,
)
def test_the_decision_is_deterministic(job_id: int, attempt: int, policy: RetryPolicy) -> None:
    first = decide_retry(job_id=job_id, attempt=attempt, max_attempts=101, policy=policy)
    again = decide_retry(job_id=job_id, attempt=attempt, max_attempts=101, policy=policy)
    assert first == again


@given(
    attempt=st.integers(min_value=1, max_value=100),
    max_attempts=st.integers(min_value=1, max_value=100),
)
def test_no_retry_once_max_attempts_is_reached(attempt: int, max_attempts: int) -> None:
    decision = decide_retry(
        job_id=7, attempt=attempt, max_attempts=max_attempts, policy=RetryPolicy(1, 60)
    )
    assert decision.retry is (attempt < max_attempts)
    if not decision.retry:
        assert decision.reason_code == MAX_ATTEMPTS_REACHED


def test_jitter_spreads_jobs_that_failed_together() -> None:
    fractions = {round(jitter_fraction(job_id, 1), 6) for job_id in range(1, 201)}
    assert len(fractions) > 190
    assert all(0 <= f < 1 for f in fractions)
